"""Export a store to JSON Lines and import it back (into an empty store: a copy; into a full one: a merge).

One line per record: a header, then facts (current and superseded, with `superseded_by` as a uid),
episodes, skill outcomes and causal facts. Embeddings are derived data and are not exported; the
importing store re-encodes on its first retrieval. Records carry uids, so importing the same file
twice changes nothing the second time. Import validates every line before writing anything and then
writes everything in one transaction: a malformed line is reported with its number and nothing is
imported; the export is written to a temporary file and moved into place, so it is never partial.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.atomic import atomic_write
from memory.records import EpisodeRecord, Provenance, Triple, validate_causal
from memory.revision import (
    CausalClaim,
    FactImport,
    add_causal,
    add_fact,
    insert_history_fact,
    known_fact_uid,
    record_outcome,
)

if TYPE_CHECKING:
    from memory.store import KnowledgeStore

FORMAT = "embodia-memory"
FORMAT_VERSION = 1
NUMBER = (int, float)
SQLITE_INT_MAX = 2**63 - 1
MAX_EVIDENCE = 10**9  # observations merged into one fact; more means a corrupt or crafted file
MAX_MAGNITUDE = 1e15  # effects, intervals and timestamps beyond this are not measurements
# Required fields and their JSON types per record type ("?" prefix: may be null).
FIELDS: dict[str, dict[str, tuple]] = {
    "fact": {"uid": (str,), "subject": (str,), "relation": (str,), "object": (str,), "confidence": NUMBER,
             "source": (str,), "observed_at": NUMBER, "created_at": NUMBER, "updated_at": NUMBER,
             "evidence": (int,), "active": (bool,), "?superseded_by": (str,)},
    "episode": {"uid": (str,), "instruction": (str,), "plan": (object,), "steps": (list,), "final_facts": (list,),
                "success": (bool,), "metadata": (dict,), "created_at": NUMBER},
    "skill_outcome": {"uid": (str,), "skill": (str,), "args": (list,), "success": (bool,), "at": NUMBER,
                      "?episode_uid": (str,), "legacy": (bool,)},
    "causal": {"uid": (str,), "subject": (str,), "relation": (str,), "object": (str,), "effect": NUMBER,
               "?interval": (list,), "level": NUMBER, "?n": (int,), "source": (str,), "created_at": NUMBER,
               "active": (bool,), "?superseded_by": (str,)},
}


def _fact_lines(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    rows = conn.execute(
        "SELECT f.uid, f.subject, f.relation, f.object, f.confidence, f.source_kind, f.source_ref, f.observed_at,"
        " f.created_at, f.updated_at, f.evidence, f.active, s.uid FROM facts f"
        " LEFT JOIN facts s ON s.id = f.superseded_by ORDER BY f.id")
    for uid, subj, rel, obj, conf, kind, ref, observed, created, updated, evidence, active, succ in rows:
        yield {"type": "fact", "uid": uid, "subject": subj, "relation": rel, "object": obj, "confidence": conf,
               "source": str(Provenance(kind, ref)), "observed_at": observed, "created_at": created,
               "updated_at": updated, "evidence": evidence, "active": bool(active), "superseded_by": succ}


def _other_lines(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    for uid, instr, plan, steps, final, success, meta, created in conn.execute(
            "SELECT uid, instruction, plan_json, steps_json, final_facts_json, success, metadata_json, created_at"
            " FROM episodes ORDER BY id"):
        yield {"type": "episode", "uid": uid, "instruction": instr, "plan": json.loads(plan),
               "steps": json.loads(steps), "final_facts": json.loads(final), "success": bool(success),
               "metadata": json.loads(meta), "created_at": created}
    for uid, skill, key, success, at, ep_uid, legacy in conn.execute(
            "SELECT uid, skill, args_key, success, at, episode_uid, legacy FROM skill_outcomes ORDER BY id"):
        yield {"type": "skill_outcome", "uid": uid, "skill": skill, "args": json.loads(key), "success": bool(success),
               "at": at, "episode_uid": ep_uid, "legacy": bool(legacy)}
    for (uid, subj, rel, obj, effect, low, high, level, n, kind, ref, created, active, succ) in conn.execute(
            "SELECT c.uid, c.subject, c.relation, c.object, c.effect, c.ci_low, c.ci_high, c.level, c.n,"
            " c.source_kind, c.source_ref, c.created_at, c.active, s.uid FROM causal_facts c"
            " LEFT JOIN causal_facts s ON s.id = c.superseded_by ORDER BY c.id"):
        yield {"type": "causal", "uid": uid, "subject": subj, "relation": rel, "object": obj, "effect": effect,
               "interval": None if low is None else [low, high], "level": level, "n": n,
               "source": str(Provenance(kind, ref)), "created_at": created, "active": bool(active),
               "superseded_by": succ}


def export_jsonl(store: KnowledgeStore, out: str | Path) -> dict[str, int]:
    """Write the whole store to `out` atomically (temp file + rename); return record counts per type."""
    counts: dict[str, int] = {}

    def write(temp: str) -> None:
        with open(temp, "w", encoding="utf-8") as stream, store.read() as conn:
            header = {"type": "header", "format": FORMAT, "version": FORMAT_VERSION}
            stream.write(json.dumps(header) + "\n")
            for line in (*_fact_lines(conn), *_other_lines(conn)):
                counts[line["type"]] = counts.get(line["type"], 0) + 1
                stream.write(json.dumps(line, ensure_ascii=False) + "\n")

    atomic_write(out, write, fsync=True)
    return counts


def _check_fields(record: Mapping[str, Any], kind: str) -> None:
    for spec, types in FIELDS[kind].items():
        optional, name = spec.startswith("?"), spec.lstrip("?")
        if name not in record:
            raise ValueError(f"missing field {name!r}")
        value = record[name]
        if value is None and optional:
            continue
        numeric_bool = isinstance(value, bool) and bool not in types and object not in types
        if not isinstance(value, types) or numeric_bool:
            names = "/".join(t.__name__ for t in types)
            raise ValueError(f"field {name!r} must be {names}{' or null' if optional else ''}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"field {name!r} must be finite, got {value!r}")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > SQLITE_INT_MAX:
            raise ValueError(f"field {name!r} = {value} does not fit a 64-bit integer")
        if isinstance(value, NUMBER) and not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
            raise ValueError(f"field {name!r} = {value!r} is out of range (|value| <= {MAX_MAGNITUDE:g})")


def _check_record(record: Mapping[str, Any], kind: str) -> None:
    """Validate beyond types, with the same rules live writes use."""
    if kind in ("fact", "causal"):
        Provenance.parse(record["source"])
        Triple.coerce((record["subject"], record["relation"], record["object"]))
    if kind == "fact":
        Triple.coerce((record["subject"], record["relation"], record["object"], record["confidence"]))
        if not 1 <= record["evidence"] <= MAX_EVIDENCE:
            raise ValueError(f"field 'evidence' must be between 1 and {MAX_EVIDENCE}, got {record['evidence']!r}")
    elif kind == "episode":
        EpisodeRecord(record["instruction"], record["plan"], record["steps"], record["final_facts"],
                      record["success"], record["metadata"], record["uid"])
    elif kind == "causal":
        interval = record["interval"]
        if interval is not None and (len(interval) != 2 or not all(
                isinstance(v, NUMBER) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= MAX_MAGNITUDE
                for v in interval)):
            raise ValueError(f"field 'interval' must be [low, high] (finite numbers) or null, got {interval!r}")
        validate_causal(record["relation"], record["effect"], None if interval is None else tuple(interval),
                        record["level"])


def parse_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read and validate every line; raise ValueError naming the file and line of the first bad one."""
    if not path.is_file():
        raise FileNotFoundError(f"import file not found: {path}")
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    with path.open(encoding="utf-8") as stream:
        for number, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError(f"expected a JSON object, got {type(record).__name__}")
                kind = record.get("type")
                if not records:
                    if kind != "header" or record.get("format") != FORMAT:
                        raise ValueError(f"expected the header {{\"type\": \"header\", \"format\": \"{FORMAT}\"}}")
                    if record.get("version") != FORMAT_VERSION:
                        raise ValueError(f"unsupported format version {record.get('version')!r}")
                elif kind not in FIELDS:
                    raise ValueError(f"unknown record type {kind!r}; expected one of {', '.join(FIELDS)}")
                else:
                    _check_fields(record, kind)
                    _check_record(record, kind)
            except ValueError as error:
                raise ValueError(f"{path} line {number}: {error}") from error
            records.append(record)
            lines.append(number)
    if not records:
        raise ValueError(f"{path} is empty; expected a header line first")
    _check_links(path, records[1:], lines[1:])
    return records[1:]


def _check_links(path: Path, records: list[dict[str, Any]], lines: list[int]) -> None:
    """Across lines: each uid once per record type; `superseded_by` names another record of the file, no cycles.

    The store's UNIQUE constraints would otherwise stop the import with a raw IntegrityError, and a
    self-referencing or dangling `superseded_by` would be stored as is (a fact replaced by itself, or
    by nothing), which breaks history queries later.
    """
    seen: dict[tuple[str, str], int] = {}
    for record, number in zip(records, lines, strict=True):
        key = (record["type"], record["uid"])
        if key in seen:
            raise ValueError(f"{path} line {number}: duplicate uid {record['uid']!r} "
                             f"(the {record['type']} on line {seen[key]} has it too)")
        seen[key] = number
    for kind in ("fact", "causal"):
        successor = {r["uid"]: r["superseded_by"] for r in records if r["type"] == kind}
        where = {r["uid"]: number for r, number in zip(records, lines, strict=True) if r["type"] == kind}
        for uid, target in successor.items():
            if target == uid:
                raise ValueError(f"{path} line {where[uid]}: {kind} {uid!r} is superseded_by itself")
            if target is not None and target not in successor:
                raise ValueError(f"{path} line {where[uid]}: {kind} {uid!r} is superseded_by {target!r}, "
                                 f"which is not a {kind} in the file (dangling reference)")
        terminated: set[str] = set()  # chains already followed to their end: each uid is walked once
        for uid in successor:
            chain: dict[str, int] = {}  # uid -> position on this walk (dicts keep order, lookups are O(1))
            current: str | None = uid
            while current is not None and current not in terminated:
                if current in chain:
                    loop = [*list(chain)[chain[current]:], current]
                    shown = loop if len(loop) <= 8 else [*loop[:4], "...", *loop[-2:]]
                    cycle = " -> ".join(shown) + ("" if len(loop) <= 8 else f" ({len(loop) - 1} records)")
                    raise ValueError(f"{path} line {where[current]}: superseded_by chain loops: {cycle}")
                chain[current] = len(chain)
                current = successor[current]
            terminated.update(chain)


def _import_facts(conn: sqlite3.Connection, facts: list[dict[str, Any]], ctx: Any, tally: dict[str, int]) -> None:
    fresh = [f for f in facts if not known_fact_uid(conn, f["uid"])]
    tally["skipped"] += len(facts) - len(fresh)
    for f in sorted(fresh, key=lambda f: (not f["active"], f["observed_at"])):
        triple = Triple(f["subject"], f["relation"], f["object"], float(f["confidence"]))
        extra = FactImport(f["uid"], f["created_at"], f["updated_at"], f["evidence"])
        source = Provenance.parse(f["source"])
        if f["active"]:
            add_fact(conn, triple, source, f["observed_at"], ctx, extra)
        else:
            insert_history_fact(conn, triple, source, f["observed_at"], ctx, extra)
        tally["fact"] += 1
    links = [(f["superseded_by"], f["superseded_by"], f["uid"]) for f in fresh if f["superseded_by"]]
    conn.executemany(
        "UPDATE facts SET superseded_by = (SELECT id FROM facts WHERE uid = ? UNION ALL"
        " SELECT fact_id FROM fact_aliases WHERE uid = ? LIMIT 1) WHERE uid = ? AND active = 0", links)


def _import_causal(conn: sqlite3.Connection, claims: list[dict[str, Any]], ctx: Any, tally: dict[str, int]) -> None:
    for c in sorted(claims, key=lambda c: (not c["active"], c["created_at"])):
        if conn.execute("SELECT 1 FROM causal_facts WHERE uid = ?", (c["uid"],)).fetchone():
            tally["skipped"] += 1
            continue
        interval = None if c["interval"] is None else (float(c["interval"][0]), float(c["interval"][1]))
        claim = CausalClaim(c["subject"], c["relation"], c["object"], float(c["effect"]), interval,
                            float(c["level"]), c["n"], Provenance.parse(c["source"]), c["created_at"], c["uid"])
        new_id = add_causal(conn, claim, ctx)
        if not c["active"]:
            conn.execute("UPDATE causal_facts SET active = 0 WHERE id = ?", (new_id,))
        tally["causal"] += 1
    links = [(c["superseded_by"], c["uid"]) for c in claims if c["superseded_by"]]
    conn.executemany("UPDATE causal_facts SET superseded_by = (SELECT id FROM causal_facts WHERE uid = ?)"
                     " WHERE uid = ? AND active = 0", links)


def _import_episode(conn: sqlite3.Connection, e: dict[str, Any], rev: int) -> bool:
    cursor = conn.execute(
        "INSERT OR IGNORE INTO episodes (uid, instruction, plan_json, steps_json, final_facts_json, success,"
        " metadata_json, created_at, rev) VALUES (?,?,?,?,?,?,?,?,?)",
        (e["uid"], e["instruction"], json.dumps(e["plan"]), json.dumps(e["steps"]), json.dumps(e["final_facts"]),
         int(e["success"]), json.dumps(e["metadata"]), e["created_at"], rev))
    return cursor.rowcount == 1


def import_jsonl(store: KnowledgeStore, path: str | Path) -> dict[str, int]:
    """Validate the whole file, then merge it into `store` in one transaction; return what was added."""
    records = parse_jsonl(Path(path))
    by_type: dict[str, list[dict[str, Any]]] = {kind: [] for kind in FIELDS}
    for record in records:
        by_type[record["type"]].append(record)
    tally = {"fact": 0, "episode": 0, "skill_outcome": 0, "causal": 0, "skipped": 0}
    with store.write() as ctx:
        conn = store.conn
        for e in by_type["episode"]:
            added = _import_episode(conn, e, ctx.rev)
            tally["episode" if added else "skipped"] += 1
        for s in by_type["skill_outcome"]:
            added = record_outcome(conn, s["skill"], tuple(s["args"]), s["success"], s["at"],
                                   episode_uid=s["episode_uid"], uid=s["uid"], legacy=s["legacy"])
            tally["skill_outcome" if added else "skipped"] += 1
        _import_facts(conn, by_type["fact"], ctx, tally)
        _import_causal(conn, by_type["causal"], ctx, tally)
    return tally
