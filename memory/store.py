"""`KnowledgeStore`: what the agent remembers between episodes, in one SQLite file.

    >>> store = KnowledgeStore("runs/memory.sqlite", encoder=HashingTextEncoder())   # doctest: +SKIP
    >>> store.add_facts([("yellow_block", "located_in", "drawer")], source="episode:42")
    >>> store.object_locations()["yellow_block"]
    'drawer'
    >>> store.retrieve("take the block you hid in the drawer", k=3).facts[0].item.triple
    ('yellow_block', 'located_in', 'drawer')

Every write is one `BEGIN IMMEDIATE … COMMIT` transaction in WAL mode, so readers in other threads or
processes keep reading a consistent snapshot while a writer writes, and a killed writer leaves either
the whole transaction or none of it. The store is safe to share between threads (one lock per store).
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np

from memory import queries, schema
from memory.errors import InputError
from memory.index import TextEncoder, encode_checked, to_blob
from memory.records import (
    DEFAULT_FUNCTIONAL_SLOTS,
    CausalFact,
    Episode,
    EpisodeRecord,
    Fact,
    Hit,
    Provenance,
    Retrieval,
    SkillStats,
    Triple,
    validate_causal,
)
from memory.retrieval import Retriever, entity_candidates, item_text
from memory.revision import CausalClaim, WriteContext, add_causal, add_fact, bump_revision, new_uid, record_outcome

logger = logging.getLogger(__name__)

DEFAULT_PATH = Path("runs") / "memory.sqlite"
_F = TypeVar("_F", bound=Callable[..., Any])


def _damage(error: BaseException) -> bool:
    """Whether a sqlite3 error means damaged pages ("malformed", "not a database"), not a lock or a constraint."""
    return type(error) is sqlite3.DatabaseError


def _reads_pages(method: _F) -> _F:
    """Turn SQLite's bare DatabaseError on a damaged page into `StoreCorruptError` naming the file."""

    @functools.wraps(method)
    def wrapper(self: KnowledgeStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as error:
            if _damage(error):
                self._damaged = True  # nothing more is written to it, `close` included
                raise schema.corrupt_store(self.path, str(error)) from error
            raise

    return wrapper  # type: ignore[return-value]


class KnowledgeStore:
    """Facts, episodes, skill statistics and causal facts with embedding retrieval.

    Args:
        path: the SQLite file; created (with parent folders) when missing and `create` is True.
        encoder: any object with `.dim` and `.encode(list[str]) -> (n, dim)` unit rows (the perception
            `TextEncoder` protocol). Without one the store works but `retrieve` raises.
        create: whether a missing file may be created (read-only CLI commands pass False).
        functional_slots: relation → slot name for relations holding one value per subject
            (default: location relations, `state`, `holding`).
        durable: `synchronous=FULL` (survives power loss) rather than NORMAL (survives process crashes).
        busy_timeout_s: how long a write waits for another writer's lock before failing.
        clock: time source (seconds); tests inject a fake one.
        entity_weight: added to a retrieved item's cosine score when it names an entity in the query.
        recent_window: how many newest outcomes `SkillStats.recent_mean` covers.
    """

    def __init__(self, path: str | Path = DEFAULT_PATH, encoder: TextEncoder | None = None, *, create: bool = True,
                 functional_slots: Mapping[str, str] | None = None, durable: bool = True,
                 busy_timeout_s: float = 30.0, clock: Callable[[], float] = time.time,
                 entity_weight: float = 0.25, recent_window: int = 20) -> None:
        if encoder is not None and not isinstance(encoder, TextEncoder):
            raise TypeError(f"encoder must have .dim and .encode(texts), got {type(encoder).__name__}")
        if recent_window < 1:
            raise InputError(f"recent_window must be >= 1, got {recent_window}")
        self.path = Path(path)
        self._clock = clock
        self._slots = MappingProxyType(dict(DEFAULT_FUNCTIONAL_SLOTS if functional_slots is None else functional_slots))
        self._lock = threading.RLock()
        self._entity_weight = float(entity_weight)
        self._window = recent_window
        self._conn: sqlite3.Connection | None = schema.open_store(
            self.path, create_missing=create, busy_timeout_s=busy_timeout_s, durable=durable, now=clock())
        self._retriever = Retriever(encoder) if encoder is not None else None
        self._busy_ms = int(busy_timeout_s * 1000)
        self._unsaved: list[tuple[str, list[int], np.ndarray]] = []
        self._checked = False  # quick_check passed on this connection (run before the first write)
        self._damaged = False  # a read or write met a damaged page: the store is not written to again

    # -- lifecycle -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is None:
                return
            try:
                # A damaged store is left as it is (the error that found the damage says so); saving the vectors
                # would also fail and replace that clear error with SQLite's bare one.
                if not self._damaged and not self._save_vectors(wait=True):
                    logger.warning("%s: could not save encoded embeddings; they will be recomputed", self.path)
            finally:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> KnowledgeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        """The open SQLite connection; ValueError once the store is closed."""
        if self._conn is None:
            raise ValueError(f"knowledge store {self.path} is closed")
        return self._conn

    @property
    def encoder(self) -> TextEncoder | None:
        """The text encoder retrieval uses, or None when the store was opened without one."""
        return None if self._retriever is None else self._retriever.encoder

    def check_integrity(self) -> None:
        """Run `PRAGMA quick_check` once per connection; raise `StoreCorruptError` if the file is damaged.

        Writing into a damaged B-tree can spread the damage (SQLite may reuse a bad page), so every
        write path calls this first. The result is cached: the check reads every page once (measured
        ~0.1 s for a 5 MB store of 20,000 facts), which a connection pays once, not per write (~5 ms).
        Reads run it too (see `read`).
        """
        with self._lock:
            if self._checked:
                return
            result = schema.quick_check(self.conn)
            if result != "ok":
                self._damaged = True  # `close` must not save vectors into it either
                raise schema.corrupt_store(self.path, result)
            self._checked = True

    @contextmanager
    def write(self) -> Iterator[WriteContext]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on any error), stamped with a new revision.

        Refuses (StoreCorruptError) a store that fails the integrity check.
        """
        with self._lock:
            self.check_integrity()
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield WriteContext(bump_revision(conn), self._clock(), self._slots)
                conn.execute("COMMIT")
            except BaseException as error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(error, sqlite3.DatabaseError) and _damage(error):
                    raise schema.corrupt_store(self.path, str(error)) from error
                raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several read statements; a damaged page raises `StoreCorruptError`.

        The first read on a connection runs the integrity check as writes do: a query reads only the pages its
        indexes lead to, so without it whether a damaged store is noticed would depend on where the damage fell.
        """
        with self._lock:
            self.check_integrity()
            conn = self.conn
            conn.execute("BEGIN")
            try:
                yield conn
            except sqlite3.DatabaseError as error:
                if _damage(error):
                    raise schema.corrupt_store(self.path, str(error)) from error
                raise
            finally:
                conn.execute("COMMIT")

    # -- writing ---------------------------------------------------------------------------------------

    def _vectors(self, texts: list[str]) -> np.ndarray | None:
        if self._retriever is None or not texts:
            return None
        return encode_checked(self._retriever.encoder, texts)

    def _store_vectors(self, kind: str, ids: Sequence[int], vectors: np.ndarray | None) -> None:
        if vectors is None or self._retriever is None:
            return
        self.conn.executemany(
            "INSERT OR REPLACE INTO embeddings (kind, item_id, model, dim, vector) VALUES (?, ?, ?, ?, ?)",
            [(kind, i, self._retriever.model, vectors.shape[1], to_blob(v)) for i, v in zip(ids, vectors, strict=True)],
        )

    def add_facts(self, facts: Iterable[Triple | Sequence[object]], source: Provenance | str = "user",
                  observed_at: float | None = None) -> list[int]:
        """Add observations in one transaction; return, per input, the id of the fact row that holds it.

        Re-observing a current fact merges into it; a functional relation's new value supersedes the
        old one unless the observation is older than what the store already knows.
        """
        triples = [Triple.coerce(f) for f in facts]
        provenance = Provenance.parse(source)
        vectors = self._vectors([item_text("fact", t.subject, t.relation, t.object) for t in triples])
        ids: list[int] = []
        with self.write() as ctx:
            when = ctx.now if observed_at is None else float(observed_at)
            new_rows: list[tuple[int, int]] = []
            for position, triple in enumerate(triples):
                fact_id, created = add_fact(self.conn, triple, provenance, when, ctx)
                ids.append(fact_id)
                if created:
                    new_rows.append((fact_id, position))
            if vectors is not None and new_rows:
                self._store_vectors("fact", [i for i, _ in new_rows], vectors[[p for _, p in new_rows]])
        return ids

    def add_fact(self, subject: str, relation: str, obj: str, confidence: float = 1.0,
                 source: Provenance | str = "user") -> int:
        """Add a single fact (see `add_facts`)."""
        return self.add_facts([(subject, relation, obj, confidence)], source=source)[0]

    def add_episode(self, record: EpisodeRecord) -> int:
        """Store an episode, its skill outcomes and its final scene facts in one transaction; return its id."""
        if not isinstance(record, EpisodeRecord):
            raise TypeError(f"add_episode takes an EpisodeRecord, got {type(record).__name__}")
        uid = record.uid or new_uid()
        plan_json = json.dumps(record.plan)
        ep_vec = self._vectors([item_text("episode", record.instruction, plan_json, "")])
        fact_vecs = self._vectors([item_text("fact", *t[:3]) for t in record.final_facts])
        with self.write() as ctx:
            if self.conn.execute("SELECT 1 FROM episodes WHERE uid = ?", (uid,)).fetchone():
                raise InputError(f"an episode with uid {uid!r} is already stored")
            cursor = self.conn.execute(
                "INSERT INTO episodes (uid, instruction, plan_json, steps_json, final_facts_json, success,"
                " metadata_json, created_at, rev) VALUES (?,?,?,?,?,?,?,?,?)",
                (uid, record.instruction, plan_json, json.dumps([s.to_json() for s in record.steps]),
                 json.dumps([list(t) for t in record.final_facts]), int(bool(record.success)),
                 json.dumps(dict(record.metadata)), ctx.now, ctx.rev),
            )
            episode_id = int(cursor.lastrowid)
            self._store_vectors("episode", [episode_id], ep_vec)
            for step in record.steps:
                record_outcome(self.conn, step.skill, step.args, step.success, ctx.now, episode_uid=uid)
            source = Provenance("episode", uid)
            for position, triple in enumerate(record.final_facts):
                fact_id, created = add_fact(self.conn, triple, source, ctx.now, ctx)
                if created and fact_vecs is not None:
                    self._store_vectors("fact", [fact_id], fact_vecs[position : position + 1])
        return episode_id

    def record_skill_outcome(self, skill: str, args: Sequence[str] = (), success: bool = False) -> None:
        """Record one attempt of a skill outside an episode (e.g. an evaluation run)."""
        if not isinstance(skill, str) or not skill or not isinstance(success, bool):
            raise InputError(f"expected a skill name and a bool success, got {skill!r}, {success!r}")
        with self.write() as ctx:
            record_outcome(self.conn, skill, tuple(args), success, ctx.now)

    def add_causal_fact(self, subject: str, relation: str, obj: str, effect: float,
                        interval: tuple[float, float] | None = None, *, level: float = 0.95, n: int | None = None,
                        source: Provenance | str = "study") -> int:
        """Store a causal claim such as ("red_block.mass", "decreases", "push_distance", -0.03, (-0.04, -0.02)).

        A later claim about the same (subject, object) pair supersedes the earlier one.
        """
        Triple.coerce((subject, relation, obj))
        validate_causal(relation, effect, interval, level)
        text = item_text("causal", subject, relation, obj)
        vectors = self._vectors([text])
        with self.write() as ctx:
            claim = CausalClaim(subject, relation, obj, float(effect),
                                None if interval is None else (float(interval[0]), float(interval[1])),
                                float(level), n, Provenance.parse(source), ctx.now, new_uid())
            causal_id = add_causal(self.conn, claim, ctx)
            self._store_vectors("causal", [causal_id], vectors)
        return causal_id

    # -- reading ---------------------------------------------------------------------------------------

    @_reads_pages
    def object_locations(self, min_confidence: float = 0.0) -> dict[str, str]:
        """Where each object was last known to be (location slot: located_in, in, on, …)."""
        with self._lock:
            return queries.object_locations(self.conn, self._slots, min_confidence)

    @_reads_pages
    def facts_about(self, entity: str, include_history: bool = False) -> list[Fact]:
        """Facts naming `entity` (or `entity.<property>`) as subject or object, current ones first."""
        with self._lock:
            return queries.facts_about(self.conn, entity, include_history)

    def skill_stats(self, skill: str, args: Sequence[str] | None = None) -> SkillStats:
        """Success statistics of `skill` over all arguments, or for one argument tuple (prior only if unseen)."""
        with self.read() as conn:
            return queries.skill_stats(conn, skill, None if args is None else tuple(args), self._window)

    def all_skill_stats(self) -> list[SkillStats]:
        """Statistics for every (skill, args) with recorded outcomes."""
        with self.read() as conn:
            return [queries.skill_stats(conn, s, a, self._window) for s, a in queries.skill_keys(conn)]

    @_reads_pages
    def causal_facts(self, subject: str | None = None, include_history: bool = False) -> list[CausalFact]:
        """Current causal facts, all or about `subject` (e.g. "red_block" also matches "red_block.mass")."""
        with self._lock:
            return queries.causal_facts(self.conn, subject, include_history)

    @_reads_pages
    def episodes(self, limit: int | None = None) -> list[Episode]:
        """Stored episodes, newest first."""
        with self._lock:
            return queries.episodes(self.conn, limit)

    def counts(self) -> dict[str, int]:
        """Row counts per kind."""
        with self.read() as conn:
            return queries.counts(conn)

    @_reads_pages
    def integrity_check(self) -> str:
        """SQLite's full `PRAGMA integrity_check` ("ok" when healthy)."""
        with self._lock:
            return "\n".join(r[0] for r in self.conn.execute("PRAGMA integrity_check"))

    # -- retrieval -------------------------------------------------------------------------------------

    @_reads_pages
    def refresh_index(self) -> int:
        """Bring the in-memory embedding indexes up to date; return how many items had to be encoded.

        Items without a stored vector are encoded and indexed at once; saving their vectors is only
        attempted without waiting (a busy writer must not stall a reader) and retried on later calls
        and on `close()`.
        """
        if self._retriever is None:
            raise InputError(f"knowledge store {self.path} has no text encoder; pass encoder= to retrieve")
        retriever = self._retriever
        encoded = 0
        with self._lock:
            revision, missing = retriever.pull_changes(self.conn)
            for batch in missing:
                vectors = encode_checked(retriever.encoder, batch.texts)
                retriever.indexes[batch.kind].upsert(batch.ids, vectors)
                self._unsaved.append((batch.kind, batch.ids, vectors))
                encoded += len(batch.ids)
            retriever.seen_revision = revision
            self._save_vectors(wait=False)
        if encoded:
            logger.info("encoded %d stored items for retrieval with %s", encoded, retriever.model)
        return encoded

    def _save_vectors(self, wait: bool) -> bool:
        """Persist vectors encoded by `refresh_index`; without `wait`, give up at once if a writer is busy."""
        if not self._unsaved:
            return True
        conn = self.conn
        if not wait:
            conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            logger.debug("embeddings not saved yet (%s); will retry", error)
            return False
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        try:
            for kind, ids, vectors in self._unsaved:
                self._store_vectors(kind, ids, vectors)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._unsaved.clear()
        return True

    @_reads_pages
    def nearest(self, vector: np.ndarray, k: int, kind: str = "fact", refresh: bool = True) -> list[tuple[int, float]]:
        """The k item ids of `kind` (fact, episode, causal) nearest an already-encoded vector, with cosines."""
        if refresh:
            self.refresh_index()
        if self._retriever is None:
            raise InputError(f"knowledge store {self.path} has no text encoder; pass encoder= to search")
        if kind not in self._retriever.indexes:
            raise InputError(f"kind must be one of {', '.join(self._retriever.indexes)}, got {kind!r}")
        return self._retriever.top(kind, np.asarray(vector, dtype=np.float32), k)

    def index_size(self, kind: str = "fact") -> int:
        """How many items of `kind` the in-memory index holds (0 without an encoder)."""
        return 0 if self._retriever is None else len(self._retriever.indexes[kind])

    @_reads_pages
    def retrieve(self, query: str, k: int = 5) -> Retrieval:
        """Top-k facts, episodes and causal facts for a sentence, by embedding similarity and by entity.

        An item's score is its cosine similarity to the query plus `entity_weight` when it names an
        entity mentioned in the query (`red_block` for "the red block"); facts about a mentioned entity
        are candidates even when their embedding is not among the nearest.
        """
        if not isinstance(query, str) or not query.strip():
            raise InputError(f"query must be a non-empty string, got {query!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive int, got {k!r}")
        self.refresh_index()
        assert self._retriever is not None
        vector = encode_checked(self._retriever.encoder, [query])[0]
        names = entity_candidates(query)
        with self.read() as conn:
            mentioned = queries.active_fact_ids_mentioning(conn, names, limit=max(50, 4 * k))
            facts = self._rank("fact", vector, k, mentioned, lambda ids: queries.facts_by_ids(conn, ids))
            episodes = self._rank("episode", vector, k, {}, lambda ids: queries.episodes_by_ids(conn, ids),
                                  names)
            causal = self._rank("causal", vector, k, {}, lambda ids: queries.causal_by_ids(conn, ids), names)
        entities = sorted({n for hit_names in mentioned.values() for n in hit_names})
        return Retrieval(query, tuple(entities), tuple(facts), tuple(episodes), tuple(causal))

    def _rank(self, kind: str, vector: np.ndarray, k: int, mentioned: Mapping[int, set[str]],
              load: Callable[[list[int]], Mapping[int, Fact | Episode | CausalFact]],
              names: set[str] | None = None) -> list[Hit]:
        assert self._retriever is not None
        similar = dict(self._retriever.top(kind, vector, 4 * k + 8))
        similar.update(self._retriever.similarities(kind, vector, [i for i in mentioned if i not in similar]))
        items = load(list(similar))
        hits = []
        for item_id, similarity in similar.items():
            item = items.get(item_id)
            if item is None:
                continue
            named = item_id in mentioned or (names is not None and bool(_names_in(item) & names))
            hits.append(Hit(kind, similarity + (self._entity_weight if named else 0.0), similarity, item))
        hits.sort(key=lambda h: (-h.score, h.item.id))
        return hits[:k]


def _names_in(item: Fact | Episode | CausalFact) -> set[str]:
    """Entity ids an item names (for episodes: plan arguments; for causal facts: the objects of variables)."""
    if isinstance(item, Episode):
        calls = item.plan.get("plan") if isinstance(item.plan, dict) else item.plan
        args = [a for c in calls if isinstance(c, dict) for a in c.get("args", [])] if isinstance(calls, list) else []
        return {a for a in args if isinstance(a, str)}
    return {item.subject.split(".")[0], item.object.split(".")[0]}
