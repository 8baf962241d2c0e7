"""Read queries and row → record conversion; pure functions of a connection, no writes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence

from memory.records import (
    LOCATION_SLOT,
    CausalFact,
    Episode,
    Fact,
    Provenance,
    SkillStats,
    StepOutcome,
    Triple,
)
from memory.revision import args_key

FACT_COLUMNS = ("id, uid, subject, relation, object, confidence, source_kind, source_ref, observed_at, created_at,"
                " updated_at, evidence, active, superseded_by")
EPISODE_COLUMNS = "id, uid, instruction, plan_json, steps_json, final_facts_json, success, metadata_json, created_at"
CAUSAL_COLUMNS = ("id, uid, subject, relation, object, effect, ci_low, ci_high, level, n, source_kind, source_ref,"
                  " created_at, active, superseded_by")


def fact_from_row(row: Sequence) -> Fact:
    """A `Fact` from a row selected with `FACT_COLUMNS` (the column order must match)."""
    (fid, uid, subject, relation, obj, confidence, kind, ref, observed, created, updated, evidence, active,
     superseded_by) = row
    return Fact(fid, uid, subject, relation, obj, confidence, Provenance(kind, ref), observed, created, updated,
                evidence, bool(active), superseded_by)


def episode_from_row(row: Sequence) -> Episode:
    """An `Episode` from a row selected with `EPISODE_COLUMNS`, its JSON columns decoded."""
    eid, uid, instruction, plan_json, steps_json, facts_json, success, metadata_json, created = row
    steps = tuple(StepOutcome.from_json(s) for s in json.loads(steps_json))
    final = tuple(Triple(*f) for f in json.loads(facts_json))
    return Episode(eid, uid, instruction, json.loads(plan_json), steps, final, bool(success),
                   json.loads(metadata_json), created)


def causal_from_row(row: Sequence) -> CausalFact:
    """A `CausalFact` from a row selected with `CAUSAL_COLUMNS` (the column order must match)."""
    (cid, uid, subject, relation, obj, effect, low, high, level, n, kind, ref, created, active, superseded_by) = row
    return CausalFact(cid, uid, subject, relation, obj, effect, low, high, level, n, Provenance(kind, ref), created,
                      bool(active), superseded_by)


def _by_ids(conn: sqlite3.Connection, table: str, columns: str, ids: Sequence[int]) -> dict[int, Sequence]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {row[0]: row for row in conn.execute(f"SELECT {columns} FROM {table} WHERE id IN ({marks})", list(ids))}


def facts_by_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, Fact]:
    """Facts by id, fetched in one query; ids not in the table are absent from the result."""
    return {i: fact_from_row(r) for i, r in _by_ids(conn, "facts", FACT_COLUMNS, ids).items()}


def episodes_by_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, Episode]:
    """Episodes by id, fetched in one query; ids not in the table are absent from the result."""
    return {i: episode_from_row(r) for i, r in _by_ids(conn, "episodes", EPISODE_COLUMNS, ids).items()}


def causal_by_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, CausalFact]:
    """Causal facts by id, fetched in one query; ids not in the table are absent from the result."""
    return {i: causal_from_row(r) for i, r in _by_ids(conn, "causal_facts", CAUSAL_COLUMNS, ids).items()}


def _prefix_range(entity: str) -> tuple[str, str]:
    # "red_block." <= x < "red_block/" selects every "red_block.<property>" with an index range scan.
    return f"{entity}.", f"{entity}/"


def facts_about(conn: sqlite3.Connection, entity: str, include_history: bool) -> list[Fact]:
    """Facts whose subject or object is `entity` or one of its properties (`entity.mass`)."""
    low, high = _prefix_range(entity)
    active = "" if include_history else "AND active = 1"
    rows = conn.execute(
        f"SELECT {FACT_COLUMNS} FROM facts WHERE id IN ("
        " SELECT id FROM facts WHERE subject = ? UNION SELECT id FROM facts WHERE object = ?"
        " UNION SELECT id FROM facts WHERE subject >= ? AND subject < ?"
        f" UNION SELECT id FROM facts WHERE object >= ? AND object < ?) {active}"
        " ORDER BY active DESC, observed_at DESC, id DESC",
        (entity, entity, low, high, low, high),
    ).fetchall()
    return [fact_from_row(r) for r in rows]


def active_fact_ids_mentioning(conn: sqlite3.Connection, names: Iterable[str], limit: int) -> dict[int, set[str]]:
    """Active fact ids whose subject or object is one of `names`, with which names they mention."""
    names = sorted(set(names))
    if not names:
        return {}
    marks = ",".join("?" * len(names))
    rows = conn.execute(
        f"SELECT id, subject, object FROM facts WHERE active = 1 AND (subject IN ({marks}) OR object IN ({marks}))"
        " ORDER BY observed_at DESC LIMIT ?",
        (*names, *names, limit),
    ).fetchall()
    wanted = set(names)
    return {fid: {subject, obj} & wanted for fid, subject, obj in rows}


def object_locations(conn: sqlite3.Connection, slots: Mapping[str, str], min_confidence: float) -> dict[str, str]:
    """Each subject's current value in the location slot."""
    relations = sorted(r for r, s in slots.items() if s == LOCATION_SLOT)
    if not relations:
        return {}
    marks = ",".join("?" * len(relations))
    rows = conn.execute(
        f"SELECT subject, object FROM facts WHERE active = 1 AND relation IN ({marks}) AND confidence >= ?"
        " ORDER BY subject, observed_at",
        (*relations, min_confidence),
    ).fetchall()
    return {subject: obj for subject, obj in rows}


def causal_facts(conn: sqlite3.Connection, subject: str | None, include_history: bool) -> list[CausalFact]:
    """Causal facts about `subject` (exact, or any `subject.<property>`), or all of them."""
    where = [] if include_history else ["active = 1"]
    params: list[object] = []
    if subject is not None:
        low, high = _prefix_range(subject)
        where.append("(subject = ? OR (subject >= ? AND subject < ?))")
        params += [subject, low, high]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT {CAUSAL_COLUMNS} FROM causal_facts {clause} ORDER BY subject, object, created_at DESC, id DESC",
        params,
    ).fetchall()
    return [causal_from_row(r) for r in rows]


def skill_stats(conn: sqlite3.Connection, skill: str, args: Sequence[str] | None, window: int) -> SkillStats:
    """Counts for a skill (all arguments, or one argument tuple) plus the newest `window` outcomes."""
    if args is None:
        attempts, successes = conn.execute(
            "SELECT coalesce(sum(attempts), 0), coalesce(sum(successes), 0) FROM skill_records WHERE skill = ?",
            (skill,),
        ).fetchone()
        recent = conn.execute(
            "SELECT success FROM skill_outcomes WHERE skill = ? ORDER BY at DESC, id DESC LIMIT ?", (skill, window)
        ).fetchall()
    else:
        key = args_key(args)
        row = conn.execute("SELECT attempts, successes FROM skill_records WHERE skill = ? AND args_key = ?",
                           (skill, key)).fetchone()
        attempts, successes = row if row else (0, 0)
        recent = conn.execute(
            "SELECT success FROM skill_outcomes WHERE skill = ? AND args_key = ? ORDER BY at DESC, id DESC LIMIT ?",
            (skill, key, window),
        ).fetchall()
    return SkillStats(skill, None if args is None else tuple(args), int(attempts), int(successes), len(recent),
                      sum(r[0] for r in recent))


def skill_keys(conn: sqlite3.Connection) -> list[tuple[str, tuple[str, ...]]]:
    """Every (skill, args) with recorded outcomes."""
    rows = conn.execute("SELECT skill, args_key FROM skill_records ORDER BY skill, args_key").fetchall()
    return [(skill, tuple(json.loads(key))) for skill, key in rows]


def episodes(conn: sqlite3.Connection, limit: int | None) -> list[Episode]:
    """Episodes, newest first."""
    rows = conn.execute(f"SELECT {EPISODE_COLUMNS} FROM episodes ORDER BY id DESC LIMIT ?",
                        (-1 if limit is None else limit,)).fetchall()
    return [episode_from_row(r) for r in rows]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many rows of each kind the store holds (facts split into current and history)."""
    one = conn.execute
    return {
        "facts": one("SELECT count(*) FROM facts WHERE active = 1").fetchone()[0],
        "fact_history": one("SELECT count(*) FROM facts WHERE active = 0").fetchone()[0],
        "episodes": one("SELECT count(*) FROM episodes").fetchone()[0],
        "skill_outcomes": one("SELECT count(*) FROM skill_outcomes").fetchone()[0],
        "causal_facts": one("SELECT count(*) FROM causal_facts WHERE active = 1").fetchone()[0],
        "embeddings": one("SELECT count(*) FROM embeddings").fetchone()[0],
    }
