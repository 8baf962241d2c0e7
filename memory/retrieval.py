"""Keeping the in-memory embedding indexes in step with the database, and ranking for a query.

Every write bumps a store-wide revision and stamps the rows it touched with it, so a cache only asks
"which rows changed since revision R?" (an index range scan) instead of reloading; that works across
processes too. Rows that reach the cache without an embedding for the current encoder (added by a
process that had no encoder, imported, or written under another model) are encoded and stored then.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memory.index import EmbeddingIndex, TextEncoder, encoder_key

KINDS: tuple[str, ...] = ("fact", "episode", "causal")

_CHANGED_SQL = {
    "fact": "SELECT t.id, t.active, e.vector, t.subject, t.relation, t.object FROM facts t",
    "episode": "SELECT t.id, 1, e.vector, t.instruction, t.plan_json, '' FROM episodes t",
    "causal": "SELECT t.id, t.active, e.vector, t.subject, t.relation, t.object FROM causal_facts t",
}


def humanise(name: str) -> str:
    """`red_block.mass` → `red block mass`: the form sentences use."""
    return re.sub(r"[_.]+", " ", name).strip()


def plan_text(plan: object) -> str:
    """A plan's skill calls as words ("pick yellow block; place drawer"), if it has the usual shape."""
    calls = plan.get("plan") if isinstance(plan, dict) else plan
    if not isinstance(calls, list):
        return ""
    words = []
    for call in calls:
        if isinstance(call, dict) and isinstance(call.get("skill"), str):
            args = [humanise(a) for a in call.get("args", []) if isinstance(a, str)]
            words.append(" ".join([call["skill"], *args]))
    return "; ".join(words)


def item_text(kind: str, a: str, b: str, c: str) -> str:
    """The sentence embedded for an item (facts and causal facts as "subject relation object")."""
    if kind == "episode":
        steps = plan_text(json.loads(b))
        return f"{a} ({steps})" if steps else a
    return f"{humanise(a)} {humanise(b)} {humanise(c)}"


def entity_candidates(query: str, max_words: int = 4) -> set[str]:
    """Every run of 1..max_words words in the query, joined as an entity id ("red block" → "red_block")."""
    words = re.findall(r"[a-z0-9]+", query.lower())
    return {"_".join(words[i : i + n]) for n in range(1, max_words + 1) for i in range(len(words) - n + 1)}


@dataclass(frozen=True)
class Missing:
    """Items that reached the cache without a vector for the current encoder."""

    kind: str
    ids: list[int]
    texts: list[str]


class Retriever:
    """The per-kind embedding indexes of one store for one encoder."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self.model = encoder_key(encoder)
        self.indexes = {kind: EmbeddingIndex(int(encoder.dim)) for kind in KINDS}
        self.seen_revision = -1

    def pull_changes(self, conn: sqlite3.Connection) -> tuple[int, list[Missing]]:
        """Apply every row change since the last pull; return the new revision and what needs encoding.

        Runs in one read transaction so all kinds are seen at the same revision.
        """
        conn.execute("BEGIN")
        try:
            revision = int(conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])
            if revision == self.seen_revision:
                return revision, []
            missing = [self._pull_kind(conn, kind) for kind in KINDS]
        finally:
            conn.execute("COMMIT")
        return revision, [m for m in missing if m.ids]

    def _pull_kind(self, conn: sqlite3.Connection, kind: str) -> Missing:
        rows = conn.execute(
            f"{_CHANGED_SQL[kind]} LEFT JOIN embeddings e ON e.kind = ? AND e.item_id = t.id AND e.model = ?"
            " WHERE t.rev > ?",
            (kind, self.model, self.seen_revision),
        ).fetchall()
        index = self.indexes[kind]
        index.remove([r[0] for r in rows if not r[1]])
        present = [r for r in rows if r[1] and r[2] is not None]
        if present:
            joined = b"".join(r[2] for r in present)
            vectors = np.frombuffer(joined, dtype="<f4").reshape(len(present), index.dim)
            index.upsert([r[0] for r in present], vectors)
        absent = [r for r in rows if r[1] and r[2] is None]
        return Missing(kind, [r[0] for r in absent], [item_text(kind, r[3], r[4], r[5]) for r in absent])

    def top(self, kind: str, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The `k` best (id, cosine) pairs among items of `kind` for a unit query vector."""
        return self.indexes[kind].top_k(query, k)

    def similarities(self, kind: str, query: np.ndarray, ids: Sequence[int]) -> dict[int, float]:
        """Cosine of the query with each given item of `kind`, for scoring items found another way."""
        return self.indexes[kind].similarities(query, ids)
