"""Opening a store file safely: recognise it, create it, or migrate it; never clobber a stranger's file.

A knowledge store is a SQLite file whose header carries our `application_id` and whose
`user_version` is the schema version. Anything else (random bytes, someone else's database, a store
from a newer release) is refused with an error naming the file, before a single byte is written.
Older stores are migrated in one transaction after a backup copy is taken, so they are never lost.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from memory import migrations

logger = logging.getLogger(__name__)

APPLICATION_ID = 0x454D4244  # "EMBD"
SCHEMA_VERSION = 2

# The current schema. Migrations in memory/migrations.py must end up with exactly these columns.
SCHEMA_SQL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE facts (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    relation TEXT NOT NULL,
    object TEXT NOT NULL,
    confidence REAL NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    source_kind TEXT NOT NULL CHECK (source_kind IN ('episode', 'study', 'user')),
    source_ref TEXT NOT NULL DEFAULT '',
    observed_at REAL NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    evidence INTEGER NOT NULL DEFAULT 1,
    active INTEGER NOT NULL DEFAULT 1,
    superseded_by INTEGER REFERENCES facts(id),
    rev INTEGER NOT NULL
);
CREATE INDEX facts_by_subject ON facts(subject, relation);
CREATE INDEX facts_by_object ON facts(object);
CREATE INDEX facts_by_rev ON facts(rev);
CREATE UNIQUE INDEX facts_one_active_triple ON facts(subject, relation, object) WHERE active = 1;
CREATE TABLE fact_aliases (uid TEXT PRIMARY KEY, fact_id INTEGER NOT NULL REFERENCES facts(id));
CREATE TABLE episodes (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    instruction TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    steps_json TEXT NOT NULL,
    final_facts_json TEXT NOT NULL,
    success INTEGER NOT NULL,
    metadata_json TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    rev INTEGER NOT NULL
);
CREATE INDEX episodes_by_rev ON episodes(rev);
CREATE TABLE skill_outcomes (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    skill TEXT NOT NULL,
    args_key TEXT NOT NULL,
    success INTEGER NOT NULL,
    at REAL NOT NULL,
    episode_uid TEXT,
    legacy INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX skill_outcomes_by_args ON skill_outcomes(skill, args_key, at);
CREATE INDEX skill_outcomes_by_skill ON skill_outcomes(skill, at);
CREATE TABLE skill_records (
    skill TEXT NOT NULL,
    args_key TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    successes INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (skill, args_key)
);
CREATE TABLE causal_facts (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    relation TEXT NOT NULL,
    object TEXT NOT NULL,
    effect REAL NOT NULL,
    ci_low REAL,
    ci_high REAL,
    level REAL NOT NULL,
    n INTEGER,
    source_kind TEXT NOT NULL CHECK (source_kind IN ('episode', 'study', 'user')),
    source_ref TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    superseded_by INTEGER REFERENCES causal_facts(id),
    rev INTEGER NOT NULL
);
CREATE INDEX causal_by_subject ON causal_facts(subject);
CREATE INDEX causal_by_object ON causal_facts(object);
CREATE INDEX causal_by_rev ON causal_facts(rev);
CREATE TABLE embeddings (
    kind TEXT NOT NULL,
    item_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (kind, item_id, model)
);
"""


SQLITE_MAGIC = b"SQLite format 3\x00"


class StoreCorruptError(ValueError):
    """The store file is a SQLite database whose pages are damaged (a failed integrity check or read)."""


def corrupt_store(path: Path, detail: str) -> StoreCorruptError:
    """The one message for a damaged store: what failed and what the user can do about it."""
    lines = [line for line in detail.strip().splitlines() if line and not line.startswith("***")]
    first = lines[0] if lines else "unknown damage"
    return StoreCorruptError(
        f"knowledge store {path} is corrupt (SQLite reports: {first}); it is not written to, so the damage "
        f"does not spread. Restore a backup (a *.bak copy next to it, or an `embodia memory export` file "
        f"imported into a new store) or move the file aside to start a new store"
    )


def quick_check(conn: sqlite3.Connection) -> str:
    """SQLite's `PRAGMA quick_check` (O(pages), skips index-content checks): "ok", or the problems found."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as error:
        return str(error)
    return "\n".join(str(r[0]) for r in rows)


def _not_a_store(path: Path, why: str) -> ValueError:
    return ValueError(f"{path} is not an Embodia knowledge store ({why}); refusing to use or overwrite it")


def inspect(path: Path) -> tuple[int, int, list[str]]:
    """Read (application_id, user_version, table names) through a read-only connection."""
    try:
        probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise _not_a_store(path, f"cannot open it: {error}") from error
    try:
        app_id = probe.execute("PRAGMA application_id").fetchone()[0]
        version = probe.execute("PRAGMA user_version").fetchone()[0]
        tables = [r[0] for r in probe.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    except sqlite3.DatabaseError as error:
        with path.open("rb") as stream:
            if stream.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC:
                raise corrupt_store(path, str(error)) from error
        raise _not_a_store(path, f"not a readable SQLite database: {error}") from error
    finally:
        probe.close()
    return app_id, version, tables


def classify(path: Path) -> int:
    """Return the schema version of the store at `path`, 0 for "empty, create it"; raise for foreign files."""
    if path.is_dir():
        raise _not_a_store(path, "it is a directory")
    if not path.exists() or path.stat().st_size == 0:
        return 0
    app_id, version, tables = inspect(path)
    if app_id == 0 and not tables:
        return 0
    if app_id != APPLICATION_ID:
        shown = ", ".join(tables[:8]) + (", …" if len(tables) > 8 else "")
        raise _not_a_store(path, f"a SQLite database with application_id {app_id:#x} and tables: {shown}")
    if version > SCHEMA_VERSION:
        raise ValueError(
            f"{path} has knowledge-store schema version {version}, newer than this release's {SCHEMA_VERSION}; "
            "upgrade embodia to read it"
        )
    if version < 1:
        raise _not_a_store(path, f"our application_id but schema version {version}")
    return version


def connect(path: Path, busy_timeout_s: float, durable: bool) -> sqlite3.Connection:
    """Open a read-write connection in WAL mode with explicit transactions (isolation_level=None)."""
    conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        conn.close()
        raise ValueError(f"{path}: could not switch to WAL journal mode (got {mode!r}); is it on a network filesystem?")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def create(conn: sqlite3.Connection, now: float) -> None:
    """Write the current schema into an empty database, all in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            # Another process created it between our check and our lock: fine if it is a store now.
            conn.execute("ROLLBACK")
            if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                raise ValueError("refusing to create a knowledge store in a database that already has tables")
            return
        for statement in _statements(SCHEMA_SQL):
            conn.execute(statement)
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [("revision", "0"), ("created_at", repr(now))])
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT first; split so the DDL stays inside our transaction.
    return [s.strip() for s in script.split(";") if s.strip()]


def backup(conn: sqlite3.Connection, path: Path, version: int) -> Path:
    """Copy the database to `<name>.v<version>.bak` with SQLite's online backup (consistent even in WAL)."""
    target = path.with_name(f"{path.name}.v{version}.bak")
    if target.exists():
        target = path.with_name(f"{path.name}.v{version}.{int(target.stat().st_mtime)}.bak")
    copy = sqlite3.connect(str(target))
    try:
        conn.backup(copy)
    finally:
        copy.close()
    return target


def migrate(conn: sqlite3.Connection, path: Path, version: int, now: float) -> Path:
    """Bring an older store up to SCHEMA_VERSION in one transaction, after taking a backup copy."""
    saved = backup(conn, path, version)
    logger.info("migrating %s from schema v%d to v%d (backup at %s)", path, version, SCHEMA_VERSION, saved)
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current != version:  # another process migrated it while we waited for the lock
            conn.execute("ROLLBACK")
            return saved
        for step in range(version, SCHEMA_VERSION):
            migrations.STEPS[step](conn, now, _statements(SCHEMA_SQL))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except (ValueError, sqlite3.Error) as error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise ValueError(f"{path}: migration from schema v{version} to v{SCHEMA_VERSION} failed and was rolled back "
                         f"(the store is unchanged; a copy is at {saved}): {error}") from error
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return saved


def open_store(path: Path, *, create_missing: bool, busy_timeout_s: float, durable: bool,
               now: float) -> sqlite3.Connection:
    """Validate `path`, then return a WAL connection to an up-to-date store (creating or migrating it)."""
    version = classify(path)
    if version == 0 and not path.exists() and not create_missing:
        raise FileNotFoundError(f"knowledge store not found: {path}")
    if version == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path, busy_timeout_s, durable)
    try:
        if version == 0:
            if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                create(conn, now)
        elif version < SCHEMA_VERSION:
            migrate(conn, path, version, now)
    except BaseException:
        conn.close()
        raise
    return conn


def table_columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """Every table's column names; tests compare a migrated store against a fresh one with it."""
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {name: {row[1] for row in conn.execute(f"PRAGMA table_info({name})")} for name in names}
