"""Bad input to the causal and memory libraries (and their CLI commands): a clear error, never a crash or a hang.

Each row builds one bad input, names the exception type it must raise and a pattern the message must
contain, so a row fails if the error is raised for the wrong reason (a RecursionError, a MemoryError,
sqlite's bare "malformed", or a message that does not say what was wrong). The CLI rows check exit 2,
one line on stderr naming the problem, and nothing on stdout.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from causal.expr import MAX_EXPRESSION_LENGTH, parse_expression
from causal.jsonfile import read_json
from causal.queries import answer_query
from causal.sampling import sample
from causal.spec import load_scm, parse_scm
from experiments.cli import main
from memory import KnowledgeStore, StoreCorruptError, import_jsonl
from perception.text import HashingTextEncoder


def nonlinear(expr: str, noise: float = 0.5) -> dict[str, Any]:
    """X ~ N(0, 1), Y = expr(X) + N(0, noise²)."""
    return {"format_version": 1, "id": "m", "scm_type": "nonlinear_additive_noise", "nodes": ["X", "Y"],
            "equations": {"X": {"parents": [], "expr": "0", "noise_std": 1.0},
                          "Y": {"parents": ["X"], "expr": expr, "noise_std": noise}}}


def query(model: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return answer_query(parse_scm(model), {"type": "interventional_mean", "target": "Y", "do": {"X": 0.3}, **fields})


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def corrupt_store(path: Path) -> Path:
    """A real store with some data pages damaged (every table has some) while its header and schema stay readable."""
    with KnowledgeStore(path, HashingTextEncoder(dim=16)) as store:
        store.add_facts([(f"obj{i}", "located_in", f"place{i % 7}") for i in range(1500)], source="user")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    pages = len(data) // page
    for number in range(pages // 4, pages - 1, max(1, pages // 12)):
        data[number * page + 8:(number + 1) * page - 96] = b"\x5a" * (page - 104)
    path.write_bytes(bytes(data))
    return path


HEADER = {"type": "header", "format": "embodia-memory", "version": 1}


def fact(uid: str, active: bool = True, superseded_by: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "fact", "uid": uid, "subject": "mug", "relation": "located_in", "object": f"place_{uid}",
            "confidence": 1.0, "source": "user", "observed_at": 1.0, "created_at": 1.0, "updated_at": 1.0,
            "evidence": 1, "active": active, "superseded_by": superseded_by, **extra}


def causal(uid: str, superseded_by: str | None = None) -> dict[str, Any]:
    return {"type": "causal", "uid": uid, "subject": "red_block.mass", "relation": "decreases",
            "object": "push_distance", "effect": -0.03, "interval": [-0.04, -0.02], "level": 0.95, "n": 10,
            "source": "study:s", "created_at": 1.0, "active": superseded_by is None, "superseded_by": superseded_by}


def jsonl(path: Path, *records: dict[str, Any], raw: str = "") -> Path:
    lines = [json.dumps(HEADER), *(json.dumps(r) for r in records)]
    return write(path, "\n".join(lines) + "\n" + raw)


# (id, make the failing call from tmp_path, exception type, pattern the message must contain)
LIBRARY_ROWS: list[tuple[str, Callable[[Path], Any], type[BaseException], str]] = [
    ("samples 10**12", lambda _: query(nonlinear("sin(X)"), samples=10**12), ValueError, r"exceeds the cap"),
    ("weighted samples 10**9", lambda _: answer_query(parse_scm(nonlinear("X")), {
        "type": "observational_mean", "target": "X", "given": {"Y": 0.1}, "samples": 10**9}),
     ValueError, r"exceeds the cap of 10,000,000"),
    ("ate samples 10**12", lambda _: answer_query(parse_scm(nonlinear("X")), {
        "type": "ate", "treatment": "X", "outcome": "Y", "treatment_value": 1, "control_value": 0,
        "samples": 10**12}), ValueError, r"samples=1000000000000 exceeds the cap"),
    ("sample 10**12 rows", lambda _: sample(parse_scm(nonlinear("X")), 10**12, np.random.default_rng(0)),
     ValueError, r"limit is 10,000,000 rows"),
    ("nested parentheses", lambda _: parse_expression("(" * 900 + "X" + ")" * 900), ValueError,
     r"nests deeper than 50 levels"),
    ("unary chain", lambda _: parse_expression("-" * 900 + "X"), ValueError, r"nests deeper than 50 levels"),
    ("power chain", lambda _: parse_expression("**".join(["2"] * 900)), ValueError, r"nests deeper than 50"),
    ("nested calls", lambda _: parse_expression("sin(" * 900 + "X" + ")" * 900), ValueError, r"nests deeper"),
    ("long expression", lambda _: parse_expression("X+" * MAX_EXPRESSION_LENGTH + "X"), ValueError,
     r"characters long; the limit is 10000"),
    ("constant 10**10**10", lambda _: parse_scm(nonlinear("10**10**10")), ValueError,
     r"node 'Y': expression '10\*\*10\*\*10' evaluates to inf"),
    ("X/0", lambda _: query(nonlinear("X/0")), ValueError, r"node 'Y'.*non-finite.*division by zero"),
    ("log(-1)", lambda _: query(nonlinear("log(X - 10)")), ValueError, r"node 'Y'.*non-finite.*log of a negative"),
    ("overflow exp(1000*X)", lambda _: query(nonlinear("exp(1000*X)"), do={"X": 1.0}), ValueError,
     r"node 'Y'.*non-finite"),
    ("linear answer overflows", lambda _: answer_query(parse_scm({
        "scm_type": "linear_gaussian", "nodes": ["X", "Y"], "equations": {
            "X": {"noise_std": 1}, "Y": {"parents": ["X"], "coefficients": {"X": 1e308}, "noise_std": 1}}}),
        {"type": "interventional_mean", "target": "Y", "do": {"X": 100}}), ValueError, r"the answer is inf"),
    ("deeply nested SCM JSON", lambda tmp: load_scm(write(tmp / "m.json", "[" * 100_000 + "]" * 100_000)),
     ValueError, r"m\.json: JSON nests deeper than 64 levels"),
    ("NaN literal in SCM", lambda tmp: load_scm(write(tmp / "m.json", json.dumps(nonlinear("X")).replace(
        '"noise_std": 0.5', '"noise_std": NaN'))), ValueError, r"NaN is not a JSON number"),
    ("deeply nested query JSON", lambda tmp: read_json(write(tmp / "q.json", '{"a":' * 200 + "1" + "}" * 200),
     "queries"), ValueError, r"q\.json: JSON nests deeper than 64 levels"),
    ("store with damaged pages refuses writes", lambda tmp: KnowledgeStore(corrupt_store(tmp / "s.db")).add_fact(
        "a", "on", "b"), StoreCorruptError, r"s\.db is corrupt \(SQLite reports: .*\); it is not written to"),
    ("garbage store file", lambda tmp: KnowledgeStore(write(tmp / "g.db", "x" * 5000)), ValueError,
     r"g\.db is not an Embodia knowledge store"),
    ("import: duplicate uid", lambda tmp: import_jsonl(KnowledgeStore(tmp / "s.db"), jsonl(
        tmp / "e.jsonl", fact("a"), fact("a"))), ValueError, r"line 3: duplicate uid 'a' \(the fact on line 2"),
    ("import: superseded_by itself", lambda tmp: import_jsonl(KnowledgeStore(tmp / "s.db"), jsonl(
        tmp / "e.jsonl", fact("a", active=False, superseded_by="a"))), ValueError, r"fact 'a' is superseded_by itself"),
    ("import: dangling superseded_by", lambda tmp: import_jsonl(KnowledgeStore(tmp / "s.db"), jsonl(
        tmp / "e.jsonl", fact("a", active=False, superseded_by="ghost"))), ValueError,
     r"superseded_by 'ghost', which is not a fact in the file \(dangling"),
    ("import: superseded_by cycle", lambda tmp: import_jsonl(KnowledgeStore(tmp / "s.db"), jsonl(
        tmp / "e.jsonl", fact("a", False, "b"), fact("b", False, "c"), fact("c", False, "b"))), ValueError,
     r"superseded_by chain loops: b -> c -> b"),
    ("import: causal superseded_by dangling", lambda tmp: import_jsonl(KnowledgeStore(tmp / "s.db"), jsonl(
        tmp / "e.jsonl", causal("c1", superseded_by="c9"), causal("c2"))), ValueError,
     r"line 2: causal 'c1' is superseded_by 'c9', which is not a causal in the file"),
    ("import: causal interval NaN", lambda tmp: import_jsonl(KnowledgeStore(tmp / "s.db"), jsonl(
        tmp / "e.jsonl", raw=json.dumps(causal("c1")).replace("-0.04", "NaN"))), ValueError,
     r"'interval' must be \[low, high\] \(finite numbers\)"),
    ("import: evidence 1e30", lambda tmp: import_jsonl(KnowledgeStore(tmp / "s.db"), jsonl(
        tmp / "e.jsonl", fact("a", evidence=1e30))), ValueError, r"field 'evidence' must be int, got 1e\+30"),
    ("import: evidence 10**30", lambda tmp: import_jsonl(KnowledgeStore(tmp / "s.db"), jsonl(
        tmp / "e.jsonl", fact("a", evidence=10**30))), ValueError, r"'evidence' = 10{30} does not fit"),
    ("import: evidence 10**12", lambda tmp: import_jsonl(KnowledgeStore(tmp / "s.db"), jsonl(
        tmp / "e.jsonl", fact("a", evidence=10**12))), ValueError, r"'evidence' must be between 1 and 1000000000"),
    ("import: observed_at NaN", lambda tmp: import_jsonl(KnowledgeStore(tmp / "s.db"), jsonl(
        tmp / "e.jsonl", raw=json.dumps(fact("a")).replace('"observed_at": 1.0', '"observed_at": NaN'))),
     ValueError, r"line 2: field 'observed_at' must be finite"),
    ("import: created_at 1e300", lambda tmp: import_jsonl(KnowledgeStore(tmp / "s.db"), jsonl(
        tmp / "e.jsonl", fact("a", created_at=1e300))), ValueError, r"'created_at' = 1e\+300 is out of range"),
]


@pytest.mark.parametrize(("make", "error", "pattern"), [row[1:] for row in LIBRARY_ROWS],
                         ids=[row[0] for row in LIBRARY_ROWS])
def test_library_refuses_bad_input(tmp_path: Path, make: Callable[[Path], Any], error: type[BaseException],
                                   pattern: str) -> None:
    with pytest.raises(error, match=pattern) as caught:
        make(tmp_path)
    assert type(caught.value) is error or issubclass(type(caught.value), error)
    assert not isinstance(caught.value, RecursionError | MemoryError)


def test_a_refused_import_writes_nothing(tmp_path: Path) -> None:
    store = KnowledgeStore(tmp_path / "s.db")
    store.add_fact("mug", "on", "table")
    with pytest.raises(ValueError, match="duplicate uid"):
        import_jsonl(store, jsonl(tmp_path / "e.jsonl", fact("x"), fact("y"), fact("x")))
    assert [f.object for f in store.facts_about("mug")] == ["table"]
    store.close()


def test_integrity_check_runs_once_per_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from memory import schema

    calls = []
    real = schema.quick_check
    monkeypatch.setattr(schema, "quick_check", lambda conn: calls.append(1) or real(conn))
    with KnowledgeStore(tmp_path / "s.db") as store:
        for i in range(5):
            store.add_fact(f"block{i}", "on", "table")
    assert len(calls) == 1
    with KnowledgeStore(tmp_path / "s.db") as store:  # a new connection checks again
        store.add_fact("mug", "on", "table")
    assert len(calls) == 2


def test_reads_of_a_damaged_page_name_the_store(tmp_path: Path) -> None:
    store = KnowledgeStore(corrupt_store(tmp_path / "s.db"), HashingTextEncoder(dim=16))
    with pytest.raises(StoreCorruptError, match=r"s\.db is corrupt \(SQLite reports: database disk image"):
        store.retrieve("where is obj3", k=3)
    store.close()


def test_a_store_found_damaged_is_not_written_on_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Saving the encoded vectors meets the damage: the clear error stands, and `close` does not try again (it
    used to, and SQLite's bare error from `close` replaced the clear one in `embodia memory query`)."""
    with KnowledgeStore(tmp_path / "s.db", HashingTextEncoder(dim=16)) as first:
        first.add_facts([(f"obj{i}", "located_in", "shelf") for i in range(5)], source="user")
    store = KnowledgeStore(tmp_path / "s.db", HashingTextEncoder(dim=32))  # another encoder: every item re-encoded
    writes: list[str] = []

    def damaged(*_: Any) -> None:
        writes.append("vectors")
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(store, "_store_vectors", damaged)
    with pytest.raises(StoreCorruptError, match=r"s\.db is corrupt \(SQLite reports: database disk image is malformed"):
        store.refresh_index()
    store.close()  # no second write, no error
    assert writes == ["vectors"]


def test_expression_limits_leave_ordinary_expressions_alone() -> None:
    """Long sums are flat loops, not recursion: 3000 terms evaluate; 50 levels of nesting still parse."""
    total = parse_expression("+".join(["X"] * 3000))
    assert float(total.evaluate({"X": 1.0})) == 3000.0 and total.names == {"X"}
    assert float(parse_expression("(" * 49 + "X" + ")" * 49).evaluate({"X": 2.0})) == 2.0
    assert float(parse_expression("1-2-3*4/2").evaluate({})) == 1 - 2 - 3 * 4 / 2
    assert float(parse_expression("2**3**2").evaluate({})) == 512.0
    assert float(parse_expression("-2**2").evaluate({})) == -4.0


# ---- the CLI: exit 2, one line on stderr naming the problem, stdout empty (so --json output is never half-written)

def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# Port 1 on loopback: nothing listens there, and unlike a port freed by bind(0)/close() no other process can take it.
CLOSED_PORT = 1


CLI_ROWS: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("causal query samples 10**12", lambda tmp: [
        "causal", "query", str(write(tmp / "m.json", json.dumps(nonlinear("sin(X)")))),
        str(write(tmp / "q.json", json.dumps({"type": "interventional_mean", "target": "Y", "do": {"X": 0.3},
                                               "samples": 10**12}))), "--json"], r"exceeds the cap of 100,000,000"),
    ("causal query X/0 --json", lambda tmp: [
        "causal", "query", str(write(tmp / "m.json", json.dumps(nonlinear("X/0")))),
        str(write(tmp / "q.json", json.dumps({"type": "observational_mean", "target": "Y"}))), "--json"],
     r"node 'Y': its equation produced non-finite values"),
    ("causal query log(-1)", lambda tmp: [
        "causal", "query", str(write(tmp / "m.json", json.dumps(nonlinear("log(-1)")))),
        str(write(tmp / "q.json", "{}")), "--json"], r"expression 'log\(-1\)' evaluates to nan"),
    ("causal query deep query JSON", lambda tmp: [
        "causal", "query", str(write(tmp / "m.json", json.dumps(nonlinear("X")))),
        str(write(tmp / "q.json", "[" * 50_000 + "]" * 50_000)), "--json"], r"q\.json: JSON nests deeper than 64"),
    ("causal query deep expression", lambda tmp: [
        "causal", "query", str(write(tmp / "m.json", json.dumps(nonlinear("(" * 900 + "X" + ")" * 900)))),
        str(write(tmp / "q.json", "{}"))], r"node 'Y': expression nests deeper than 50 levels"),
    ("causal sample -n 10**12", lambda tmp: [
        "causal", "sample", str(write(tmp / "m.json", json.dumps(nonlinear("X")))), "-n", str(10**12),
        "--out", str(tmp / "d.csv")], r"cannot draw 1000000000000 units"),
    ("memory add-fact on a damaged store", lambda tmp: [
        "memory", "add-fact", "a", "on", "b", "--db", str(corrupt_store(tmp / "s.db"))], r"s\.db is corrupt"),
    ("memory query on a damaged store", lambda tmp: [
        "memory", "query", "where is obj3", "--encoder", "hashing", "--db", str(corrupt_store(tmp / "s.db"))],
     # SQLite's own words vary with which damaged page the query reads first (seen: "database disk image is
     # malformed", "On tree page 182 cell 33: Offset 23130 out of range"); the store must pass them on.
     r"s\.db is corrupt \(SQLite reports: [^)]+\)"),
    ("memory stats on a garbage file", lambda tmp: [
        "memory", "stats", "--db", str(write(tmp / "g.db", "not sqlite " * 500))],
     r"g\.db is not an Embodia knowledge store"),
    ("memory import with a duplicate uid", lambda tmp: [
        "memory", "import", str(jsonl(tmp / "e.jsonl", fact("a"), fact("a"))), "--db", str(tmp / "s.db")],
     r"duplicate uid 'a'"),
    ("memory import with evidence 1e30", lambda tmp: [
        "memory", "import", str(jsonl(tmp / "e.jsonl", fact("a", evidence=1e30))), "--db", str(tmp / "s.db")],
     r"'evidence' must be int, got 1e\+30"),
    ("memory query on a fresh clone", lambda tmp: [
        "memory", "query", "where is the mug", "--encoder", "hashing", "--db", str(tmp / "none.sqlite")],
     r"knowledge store not found: .*none\.sqlite; make one with `embodia memory add-fact SUBJECT RELATION OBJECT"),
    ("eval-chains with an unreachable --ray-address", lambda tmp: [
        "eval-chains", "--chains", "2", "--length", "1", "--ray", "--ray-address", f"127.0.0.1:{CLOSED_PORT}",
        "--out", str(tmp / "ec")],
     r"cannot reach the Ray cluster at --ray-address '127\.0\.0\.1:1': Connection refused"),
]


@pytest.mark.parametrize(("argv", "pattern"), [row[1:] for row in CLI_ROWS], ids=[row[0] for row in CLI_ROWS])
def test_cli_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             argv: Callable[[Path], list[str]], pattern: str) -> None:
    import re

    arguments = argv(tmp_path)
    code, out, err = _cli(capsys, *arguments)
    # a progress bar may precede the message on the same terminal line; the message itself is one line
    messages = re.findall(r"embodia [a-z-]+: error: [^\r\n]*", err)
    assert code == 2, err
    assert len(messages) == 1 and re.search(pattern, messages[0]), err
    assert out.strip() == "", out
    assert not (tmp_path / "none.sqlite").exists()


def test_json_written_by_causal_is_strict() -> None:
    """Non-finite secondary numbers become null; the output never holds the non-JSON tokens NaN/Infinity."""
    from causal.jsonfile import dumps_strict, parse_json

    text = dumps_strict({"answer": 1.5, "ci": (float("nan"), float("inf")), "rows": [{"se": -float("inf")}]})
    assert text == '{"answer": 1.5, "ci": [null, null], "rows": [{"se": null}]}'
    assert parse_json(text) == {"answer": 1.5, "ci": [None, None], "rows": [{"se": None}]}
