"""How new evidence revises what the store believes; every function runs inside the caller's transaction.

Rules:
- The same (subject, relation, object) observed again is merged, not duplicated: its confidence is
  combined noisy-or style (two independent 0.6 observations give 0.84) and its evidence count grows.
- A functional relation (see `records.DEFAULT_FUNCTIONAL_SLOTS`) holds one value per subject and
  slot: a newer observation supersedes the current fact (kept as inactive history pointing at its
  replacement); an observation older than the current one is stored as history straight away.
- A causal claim about (subject → object) is superseded by a later study of the same pair.
- Skill outcomes are events; the per-(skill, args) counts are kept in step with them.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from memory.records import Provenance, Triple


@dataclass(frozen=True)
class WriteContext:
    """What every write in one transaction shares: its revision number, the time, the functional slots."""

    rev: int
    now: float
    slots: Mapping[str, str]


@dataclass(frozen=True)
class FactImport:
    """Extra fields a fact carries when it comes back from an export (identity, history, timestamps)."""

    uid: str
    created_at: float
    updated_at: float
    evidence: int


def new_uid() -> str:
    """A fresh random id (32 hex characters) that names a record independently of its row id."""
    return uuid.uuid4().hex


def args_key(args: Sequence[str]) -> str:
    """The canonical text key of an argument tuple (JSON list)."""
    return json.dumps(list(args), separators=(",", ":"))


def bump_revision(conn: sqlite3.Connection) -> int:
    """Advance the store-wide revision counter; caches use it to see what changed since they last looked."""
    row = conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision' RETURNING value")
    return int(row.fetchone()[0])


def _slot_relations(slots: Mapping[str, str], relation: str) -> list[str]:
    slot = slots.get(relation)
    return [] if slot is None else sorted(r for r, s in slots.items() if s == slot)


def _insert_fact(conn: sqlite3.Connection, t: Triple, source: Provenance, observed_at: float, ctx: WriteContext,
                 extra: FactImport | None, superseded_by: int | None) -> int:
    extra = extra or FactImport(new_uid(), ctx.now, ctx.now, 1)
    cursor = conn.execute(
        "INSERT INTO facts (uid, subject, relation, object, confidence, source_kind, source_ref, observed_at,"
        " created_at, updated_at, evidence, active, superseded_by, rev) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (extra.uid, t.subject, t.relation, t.object, t.confidence, source.kind, source.ref, observed_at,
         extra.created_at, extra.updated_at, extra.evidence, int(superseded_by is None), superseded_by, ctx.rev),
    )
    return int(cursor.lastrowid)


def add_fact(conn: sqlite3.Connection, t: Triple, source: Provenance, observed_at: float, ctx: WriteContext,
             extra: FactImport | None = None) -> tuple[int, bool]:
    """Add one observation; return (id of the row that now carries it, whether a new active row was made)."""
    same = conn.execute(
        "SELECT id, confidence FROM facts WHERE subject = ? AND relation = ? AND object = ? AND active = 1",
        (t.subject, t.relation, t.object),
    ).fetchone()
    if same is not None:
        fact_id, old = same
        combined = 1.0 - (1.0 - old) * (1.0 - t.confidence)
        conn.execute(
            "UPDATE facts SET confidence = ?, evidence = evidence + ?, observed_at = max(observed_at, ?),"
            " updated_at = ?, rev = ? WHERE id = ?",
            (combined, extra.evidence if extra else 1, observed_at, ctx.now, ctx.rev, fact_id),
        )
        if extra is not None:
            conn.execute("INSERT OR IGNORE INTO fact_aliases (uid, fact_id) VALUES (?, ?)", (extra.uid, fact_id))
        return fact_id, False
    relations = _slot_relations(ctx.slots, t.relation)
    if not relations:
        return _insert_fact(conn, t, source, observed_at, ctx, extra, None), True
    marks = ",".join("?" * len(relations))
    current = conn.execute(
        f"SELECT id, observed_at FROM facts WHERE subject = ? AND relation IN ({marks}) AND active = 1"
        " ORDER BY observed_at DESC, id DESC",
        (t.subject, *relations),
    ).fetchall()
    if current and current[0][1] > observed_at:  # stale news: keep it as history only
        return _insert_fact(conn, t, source, observed_at, ctx, extra, superseded_by=current[0][0]), False
    new_id = _insert_fact(conn, t, source, observed_at, ctx, extra, None)
    conn.executemany(
        "UPDATE facts SET active = 0, superseded_by = ?, rev = ? WHERE id = ?",
        [(new_id, ctx.rev, old_id) for old_id, _ in current],
    )
    return new_id, True


def insert_history_fact(conn: sqlite3.Connection, t: Triple, source: Provenance, observed_at: float,
                        ctx: WriteContext, extra: FactImport) -> int:
    """Store an already-superseded fact from an export as history (its successor is linked afterwards)."""
    cursor = conn.execute(
        "INSERT INTO facts (uid, subject, relation, object, confidence, source_kind, source_ref, observed_at,"
        " created_at, updated_at, evidence, active, superseded_by, rev) VALUES (?,?,?,?,?,?,?,?,?,?,?,0,NULL,?)",
        (extra.uid, t.subject, t.relation, t.object, t.confidence, source.kind, source.ref, observed_at,
         extra.created_at, extra.updated_at, extra.evidence, ctx.rev),
    )
    return int(cursor.lastrowid)


def known_fact_uid(conn: sqlite3.Connection, uid: str) -> bool:
    """True when a fact with this uid was stored or merged into another before (imports skip it)."""
    return conn.execute(
        "SELECT 1 FROM facts WHERE uid = ? UNION ALL SELECT 1 FROM fact_aliases WHERE uid = ? LIMIT 1", (uid, uid)
    ).fetchone() is not None


@dataclass(frozen=True)
class CausalClaim:
    """A causal fact to write (the store's `add_causal_fact` builds it from keyword arguments)."""

    subject: str
    relation: str
    object: str
    effect: float
    interval: tuple[float, float] | None
    level: float
    n: int | None
    source: Provenance
    created_at: float
    uid: str


def add_causal(conn: sqlite3.Connection, claim: CausalClaim, ctx: WriteContext) -> int:
    """Store a causal claim; a later claim about the same (subject, object) supersedes earlier ones."""
    current = conn.execute(
        "SELECT id, created_at FROM causal_facts WHERE subject = ? AND object = ? AND active = 1"
        " ORDER BY created_at DESC, id DESC",
        (claim.subject, claim.object),
    ).fetchall()
    stale = bool(current) and current[0][1] > claim.created_at
    low, high = claim.interval if claim.interval is not None else (None, None)
    cursor = conn.execute(
        "INSERT INTO causal_facts (uid, subject, relation, object, effect, ci_low, ci_high, level, n, source_kind,"
        " source_ref, created_at, active, superseded_by, rev) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (claim.uid, claim.subject, claim.relation, claim.object, claim.effect, low, high, claim.level, claim.n,
         claim.source.kind, claim.source.ref, claim.created_at, int(not stale),
         current[0][0] if stale else None, ctx.rev),
    )
    new_id = int(cursor.lastrowid)
    if not stale:
        conn.executemany("UPDATE causal_facts SET active = 0, superseded_by = ?, rev = ? WHERE id = ?",
                         [(new_id, ctx.rev, old_id) for old_id, _ in current])
    return new_id


def record_outcome(conn: sqlite3.Connection, skill: str, args: Sequence[str], success: bool, at: float, *,
                   episode_uid: str | None = None, uid: str | None = None, legacy: bool = False) -> bool:
    """Record one skill attempt and update its counts; False (and nothing written) if `uid` is known."""
    key = args_key(args)
    cursor = conn.execute(
        "INSERT OR IGNORE INTO skill_outcomes (uid, skill, args_key, success, at, episode_uid, legacy)"
        " VALUES (?,?,?,?,?,?,?)",
        (uid or new_uid(), skill, key, int(success), at, episode_uid, int(legacy)),
    )
    if cursor.rowcount == 0:
        return False
    conn.execute(
        "INSERT INTO skill_records (skill, args_key, attempts, successes, updated_at) VALUES (?, ?, 1, ?, ?)"
        " ON CONFLICT (skill, args_key) DO UPDATE SET attempts = attempts + 1,"
        " successes = successes + excluded.successes, updated_at = max(updated_at, excluded.updated_at)",
        (skill, key, int(success), at),
    )
    return True
