"""Schema migrations: `STEPS[v]` turns a version-v store into version v+1 inside the caller's transaction.

Schema v1 (the first release) kept three tables and no history:

    facts(id, subject, relation, object, confidence, source TEXT 'kind:ref', created_at)
    episodes(id, instruction, plan_json, outcomes_json, success, created_at)
    skill_records(skill, args TEXT comma-joined, successes, failures)

v2 adds fact identity and revision (uids, observation times, evidence counts, active/superseded
history), episode final facts, skill outcomes as events, causal facts and stored embeddings. The
v1 → v2 step replays v1 facts in time order through the same revision rules as live writes, so a
v1 store holding contradictions (a block "in" two places) comes out with one current value and the
older ones kept as history; v1 skill counts become undated `legacy` outcome events.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable

from memory.errors import InputError
from memory.records import DEFAULT_FUNCTIONAL_SLOTS, Provenance, StepOutcome, Triple
from memory.revision import FactImport, WriteContext, add_fact, new_uid, record_outcome

logger = logging.getLogger(__name__)

V1_TABLES = ("facts", "episodes", "skill_records")


def _v1_provenance(source: str) -> Provenance:
    kind, _, ref = (source or "user").partition(":")
    if kind == "episode":
        return Provenance("episode", f"v1-{ref}")
    if kind in ("study", "user"):
        return Provenance(kind, ref)
    return Provenance("user", f"v1:{source}")


def _v1_steps(outcomes_json: str) -> list[dict]:
    try:
        outcomes = json.loads(outcomes_json or "[]")
        return [StepOutcome.from_json(o).to_json() for o in outcomes]
    except (TypeError, ValueError) as error:
        raise InputError(f"v1 episode outcomes are not a list of step objects: {error}") from error


def _migrate_episodes(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    for ep_id, instruction, plan_json, outcomes_json, success, created_at in rows:
        metadata = {"migrated_from_schema": 1, "v1_id": ep_id}
        conn.execute(
            "INSERT INTO episodes (uid, instruction, plan_json, steps_json, final_facts_json, success,"
            " metadata_json, created_at, rev) VALUES (?,?,?,?,?,?,?,?,1)",
            (f"v1-{ep_id}", instruction, plan_json or "null", json.dumps(_v1_steps(outcomes_json)), "[]",
             int(bool(success)), json.dumps(metadata), created_at),
        )


def _migrate_facts(conn: sqlite3.Connection, rows: list[tuple], now: float) -> None:
    ctx = WriteContext(rev=1, now=now, slots=DEFAULT_FUNCTIONAL_SLOTS)
    for _, subject, relation, obj, confidence, source, created_at in sorted(rows, key=lambda r: (r[6], r[0])):
        clamped = min(max(float(confidence), 0.0), 1.0)
        if clamped != confidence:
            logger.warning("v1 fact (%s, %s, %s) had confidence %r; clamped to %s", subject, relation, obj,
                           confidence, clamped)
        extra = FactImport(uid=new_uid(), created_at=created_at, updated_at=created_at, evidence=1)
        add_fact(conn, Triple(subject, relation, obj, clamped), _v1_provenance(source), created_at, ctx, extra)


def _migrate_skills(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    for skill, args_text, successes, failures in rows:
        args = tuple(a.strip() for a in (args_text or "").split(",") if a.strip())
        for success in [True] * int(successes) + [False] * int(failures):
            record_outcome(conn, skill, args, success, 0.0, legacy=True)


def v1_to_v2(conn: sqlite3.Connection, now: float, v2_statements: list[str]) -> None:
    """Rebuild a v1 store as v2: read the old rows, replace the tables, replay the rows."""
    facts = conn.execute("SELECT id, subject, relation, object, confidence, source, created_at FROM facts").fetchall()
    episodes = conn.execute(
        "SELECT id, instruction, plan_json, outcomes_json, success, created_at FROM episodes ORDER BY id"
    ).fetchall()
    skills = conn.execute("SELECT skill, args, successes, failures FROM skill_records ORDER BY skill, args").fetchall()
    for table in V1_TABLES:
        conn.execute(f"DROP TABLE {table}")
    for statement in v2_statements:
        conn.execute(statement)
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                     [("revision", "1"), ("created_at", repr(now)), ("migrated_from_schema", "1")])
    _migrate_episodes(conn, episodes)
    _migrate_facts(conn, facts, now)
    _migrate_skills(conn, skills)
    logger.info("migrated v1 store: %d facts, %d episodes, %d skill records", len(facts), len(episodes), len(skills))


STEPS: dict[int, Callable[[sqlite3.Connection, float, list[str]], None]] = {1: v1_to_v2}
