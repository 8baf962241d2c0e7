"""Every bad input the trust review found gets exit 2 and one line on stderr naming the problem; bugs get exit 3.

The CLI runs in-process (`experiments.cli.main`) so each row costs milliseconds, not an interpreter start. Each
row names a word its message must contain, so a row cannot pass on an unrelated error (a missing file, a usage
error about another option).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from test_bad_inputs_lib import corrupt_store as damaged_store  # a real store with damaged data pages

from experiments import cli

Row = tuple[str, Callable[[Path], list[str]], str]


def _memory_export(tmp: Path) -> Path:
    """A one-fact export file written by the real exporter."""
    store = tmp / "source.db"
    assert cli.main(["memory", "add-fact", "red_block", "in", "bowl", "--db", str(store)]) == 0
    out = tmp / "export.jsonl"
    assert cli.main(["memory", "export", "--out", str(out), "--db", str(store)]) == 0
    return out


def _with_evidence(tmp: Path, evidence: str) -> Path:
    lines = _memory_export(tmp).read_text().splitlines()
    lines[1] = lines[1].replace('"evidence": 1', f'"evidence": {evidence}')
    assert evidence in lines[1]
    path = tmp / "evidence.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _write(tmp: Path, name: str, text: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _scm(tmp: Path, y: str = "sin(x)") -> Path:
    return _write(tmp, "model.json", json.dumps({
        "format_version": 1, "id": "m", "scm_type": "nonlinear_additive_noise", "nodes": ["x", "y"],
        "equations": {"x": {"expr": "0", "parents": [], "noise_std": 1},
                      "y": {"expr": y, "parents": ["x"], "noise_std": 0}}}))


def _query(tmp: Path, **extra: object) -> Path:
    return _write(tmp, "query.json", json.dumps({"type": "interventional_mean", "target": "y", "do": {"x": 0.3},
                                                 "samples": 2000, **extra}))


def _duplicated(tmp: Path) -> Path:
    lines = _memory_export(tmp).read_text().splitlines()
    return _write(tmp, "dup.jsonl", "\n".join([lines[0], lines[1], lines[1]]) + "\n")


def _deep_import(tmp: Path) -> Path:
    header = _memory_export(tmp).read_text().splitlines()[0]
    return _write(tmp, "deep.jsonl", header + "\n" + "[" * 100_000 + "\n")


def _damaged_run(runs: Path) -> Path:
    """A run folder whose checkpoints are all truncated copies."""
    run = runs / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("task: reach\nencoder: hashing\nn_envs: 1\n")
    for step in (32, 64):
        (run / "checkpoints" / f"step_{step:010d}.ckpt").write_bytes(b"PK\x03\x04 truncated")
    return runs


def _self_superseded(tmp: Path) -> Path:
    lines = _memory_export(tmp).read_text().splitlines()
    record = json.loads(lines[1])
    record["superseded_by"] = record["uid"]
    return _write(tmp, "self.jsonl", "\n".join([lines[0], json.dumps(record)]) + "\n")


def _sweep(tmp: Path, name: str) -> Path:
    return _write(tmp, "sweep.yaml", f"name: {name}\ngrid:\n  task: [reach]\n")


def _dir(tmp: Path) -> Path:
    (tmp / "a_dir").mkdir(exist_ok=True)
    return tmp / "a_dir"


def _file(tmp: Path) -> Path:
    return _write(tmp, "a_file", "x")


ROWS: list[Row] = [
    # item 7: run names stay under runs/
    ("train --name ../../x", lambda t: ["train", "--task", "reach", "--name", "../../x", "--runs-dir", str(t)],
     "separator"),
    ("train --name /abs", lambda t: ["train", "--task", "reach", "--name", str(t / "abs"), "--runs-dir", str(t)],
     "absolute"),
    ("train --name ..", lambda t: ["train", "--task", "reach", "--name", "..", "--runs-dir", str(t)], "(. or ..)"),
    ("sweep name: ../x", lambda t: ["sweep", str(_sweep(t, "../escape"))], "sweep name"),
    ("sweep name: /abs", lambda t: ["sweep", str(_sweep(t, "/tmp/escape"))], "absolute"),
    ("eval --run ../x", lambda t: ["eval", "--run", "../x", "--runs-dir", str(t)], "run name"),
    # item 5: tracebacks that become exit 2
    ("run --seed -1", lambda t: ["run", "pick up the red block", "--seed", "-1", "--out", str(t / "r")], "seed"),
    ("demo --seed -1", lambda t: ["demo", "--seed", "-1", "--out", str(t / "d")], "seed"),
    ("train --seed -1", lambda t: ["train", "--task", "reach", "--seed", "-1", "--runs-dir", str(t)], "seed"),
    ("train --set seed=-3", lambda t: ["train", "--task", "reach", "--set", "seed=-3", "--runs-dir", str(t)], "seed"),
    ("memory export --out DIR", lambda t: ["memory", "export", "--out", str(_dir(t)), "--db", str(t / "s.db")],
     "is a directory"),
    ("causal sample --out DIR", lambda t: ["causal", "sample", str(_scm(t)), "-n", "5", "--out", str(_dir(t))],
     "is a directory"),
    ("run --out FILE", lambda t: ["run", "pick up the red block", "--out", str(_file(t))], "existing file"),
    ("eval-chains --out FILE", lambda t: ["eval-chains", "--out", str(_file(t))], "existing file"),
    ("causal query: deep JSON", lambda t: ["causal", "query", str(_scm(t)),
                                           str(_write(t, "q.json", "[" * 5000 + "]" * 5000))], "nests deeper"),
    ("causal query: broken JSON", lambda t: ["causal", "query", str(_scm(t)), str(_write(t, "q.json", "{oops"))],
     "not valid JSON"),
    ("plan --memory corrupt JSON", lambda t: ["plan", "pick up the red block", "--encoder", "hashing", "--memory",
                                              str(_write(t, "m.json", '{"facts": [[1, 2'))], "not valid JSON"),
    ("plan --memory deep JSON", lambda t: ["plan", "pick up the red block", "--encoder", "hashing", "--memory",
                                           str(_write(t, "m.json", "[" * 3000 + "]" * 3000))], "nests deeper"),
    ("plan --memory corrupt store", lambda t: ["plan", "pick up the red block", "--encoder", "hashing", "--memory",
                                               str(_write(t, "m.db", b"SQLite format 3\x00" + b"\x00\xff" * 1500))],
     "is corrupt"),
    ("memory add-fact: corrupt store", lambda t: ["memory", "add-fact", "a", "in", "b", "--db",
                                                  str(_write(t, "junk.db", b"\x00garbage" * 400))],
     "not an Embodia knowledge store"),
    ("memory import: evidence 1e30", lambda t: ["memory", "import", str(_with_evidence(t, "1e30")), "--db",
                                                str(t / "into.db")], "evidence"),
    ("memory import: evidence 0", lambda t: ["memory", "import", str(_with_evidence(t, "0")), "--db",
                                             str(t / "into.db")], "evidence"),
    ("sweep: binary file", lambda t: ["sweep", str(_write(t, "s.yaml", b"\xff\xfe\x00junk"))], "not valid YAML"),
    ("train --config binary", lambda t: ["train", "--config", str(_write(t, "c.yaml", b"\xff\xfe\x00junk")),
                                         "--runs-dir", str(t)], "not valid YAML"),
    ("memory import: binary file", lambda t: ["memory", "import", str(_write(t, "b.jsonl", b"\xff\xfe\x00junk")),
                                              "--db", str(t / "into.db")], "not UTF-8"),
    ("memory import: deep line", lambda t: ["memory", "import", str(_deep_import(t)), "--db", str(t / "into.db")],
     "nests too deeply"),
    ("train --set n_steps=1e11", lambda t: ["train", "--task", "reach", "--set", "n_steps=100000000000",
                                            "--encoder", "hashing", "--runs-dir", str(t / "runs")], "rollout buffer"),
    ("train --set n_envs=100000", lambda t: ["train", "--task", "reach", "--set", "n_envs=100000",
                                             "--runs-dir", str(t / "runs")], "n_envs"),
    ("train --steps 0", lambda t: ["train", "--task", "reach", "--steps", "0", "--runs-dir", str(t)], "--steps"),
    # items 4-6 rows fixed in library code (causal limits, store integrity, import checks, planner honesty, LLM)
    ("causal query: deep expression", lambda t: ["causal", "query", str(_scm(t, "(" * 3000 + "x" + ")" * 3000)),
                                                 str(_query(t))], "nests deeper"),
    ("causal query: long expression", lambda t: ["causal", "query", str(_scm(t, "+".join(["x"] * 20000))),
                                                 str(_query(t))], "characters long"),
    ("causal query: X/0", lambda t: ["causal", "query", str(_scm(t, "x/0")), str(_query(t)), "--json"], "non-finite"),
    ("causal query: 10**10**10", lambda t: ["causal", "query", str(_scm(t, "10**10**10 + x")), str(_query(t))],
     "finite"),
    ("causal query: samples 10**12", lambda t: ["causal", "query", str(_scm(t)), str(_query(t, samples=10**12))],
     "exceeds the cap"),
    ("causal sample -n 10**12", lambda t: ["causal", "sample", str(_scm(t)), "-n", str(10**12), "--out",
                                           str(t / "s.csv")], "limit"),
    ("memory import: duplicate uid", lambda t: ["memory", "import", str(_duplicated(t)), "--db", str(t / "into.db")],
     "duplicate uid"),
    ("memory import: superseded_by itself", lambda t: ["memory", "import", str(_self_superseded(t)), "--db",
                                                       str(t / "into.db")], "superseded_by itself"),
    ("memory add-fact: damaged pages", lambda t: ["memory", "add-fact", "a", "on", "b", "--db",
                                                  str(damaged_store(t / "s.db"))], "is corrupt"),
    ("train --resume: no such run", lambda t: ["train", "--resume", "--name", "nothing", "--runs-dir", str(t)],
     "no run named"),
    ("train --resume: every checkpoint damaged", lambda t: ["train", "--resume", "--name", "run", "--runs-dir",
                                                            str(_damaged_run(t)), "--quiet"], "corrupt or foreign"),
    ("plan: emoji object", lambda t: ["plan", "put the 🔴 block in the 🥣", "--encoder", "hashing"], "symbol"),
    ("plan: unknown predicate", lambda t: ["plan", "pick up the red block", "--encoder", "hashing", "--facts",
                                           '[["glows", "red_block"]]'], "unknown fact"),
    ("plan --llm-timeout -1", lambda t: ["plan", "pick up the red block", "--encoder", "hashing", "--planner", "llm",
                                         "--llm-url", "http://127.0.0.1:9", "--llm-model", "m", "--llm-timeout", "-1"],
     "timeout"),
    ("plan --llm-timeout nan", lambda t: ["plan", "pick up the red block", "--encoder", "hashing", "--planner",
                                          "llm", "--llm-url", "http://127.0.0.1:9", "--llm-model", "m",
                                          "--llm-timeout", "nan"], "timeout"),
    # usage errors are one line too
    ("unknown option", lambda t: ["plan", "pick up the red block", "--warp"], "unrecognized arguments"),
]


@pytest.mark.parametrize(("argv_of", "word"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input_exits_2_with_one_line_naming_it(argv_of, word, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = argv_of(tmp_path)
    capsys.readouterr()  # drop what the row's setup printed
    code = cli.main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("embodia") and ": error: " in lines[0], lines[0]
    assert word in lines[0], lines[0]


def test_refused_sizes_leave_no_run_folder(tmp_path, capsys) -> None:
    runs = tmp_path / "runs"
    argv = ["train", "--task", "reach", "--set", "n_steps=100000000000", "--encoder", "hashing",
            "--runs-dir", str(runs), "--name", "big"]
    assert cli.main(argv) == 2
    assert not (runs / "big").exists()
    assert cli.main(argv) == 2  # a re-run meets the same error, not "already exists"
    assert "already exists" not in capsys.readouterr().err


def test_names_outside_runs_are_never_created(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert cli.main(["train", "--task", "reach", "--name", "../outside", "--runs-dir", "runs"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_a_plain_keyerror_from_deep_code_is_a_bug_with_a_traceback(tmp_path, capsys, monkeypatch) -> None:
    from memory.store import KnowledgeStore

    def add_fact(self, *args, **kwargs):
        return {}["row_id"]  # a genuine bug deep in the store, not input validation

    monkeypatch.setattr(KnowledgeStore, "add_fact", add_fact)
    code = cli.main(["memory", "add-fact", "a", "in", "b", "--db", str(tmp_path / "s.db")])
    err = capsys.readouterr().err
    assert code == cli.EXIT_INTERNAL_ERROR and code != 2
    assert "Traceback (most recent call last)" in err and "in add_fact" in err
    assert err.strip().splitlines()[-1].startswith("embodia memory: internal error")
    assert "KeyError" in err


@pytest.mark.parametrize("error", [ValueError("x must be positive"), TypeError("unsupported operand"),
                                   RecursionError("maximum recursion depth exceeded")])
def test_plain_exceptions_are_internal_errors(error, capsys, monkeypatch) -> None:
    def broken(args):
        raise error

    monkeypatch.setattr(cli, "build_parser", _parser_with(broken))
    assert cli.main(["plan", "pick up the red block"]) == cli.EXIT_INTERNAL_ERROR
    err = capsys.readouterr().err
    assert "Traceback" in err and type(error).__name__ in err


def test_verbose_shows_the_trace_of_a_user_error(tmp_path, capsys) -> None:
    argv = ["memory", "add-fact", "a", "in", "b", "--db", str(_write(tmp_path, "junk.db", b"\x00junk" * 400))]
    assert cli.main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert cli.main(["-v", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("embodia memory: error:")


def test_input_errors_of_every_package_are_marked() -> None:
    import agent.errors
    import causal.errors
    import envs.errors
    import memory.errors
    import perception.errors
    from experiments.common import errors

    for module in (agent.errors, causal.errors, envs.errors, memory.errors, perception.errors, errors):
        assert cli.is_user_error(module.InputError("bad"))
        assert isinstance(module.UnknownNameError("x"), KeyError)
        assert str(module.UnknownNameError("unknown object 'x'")) == "unknown object 'x'"
        assert isinstance(module.InputTypeError("x"), TypeError)
    assert cli.is_user_error(agent.errors.PlanningError("cannot ground", "x"))
    assert not cli.is_user_error(ValueError("plain"))
    assert not cli.is_user_error(KeyError("plain"))


def _parser_with(func):
    """A build_parser replacement whose parsed args run `func` (the real parser otherwise)."""
    real = cli.build_parser

    def build():
        parser = real()
        original = parser.parse_args

        def parse_args(argv=None, namespace=None):
            args = original(argv, namespace)
            args.func = func
            return args

        parser.parse_args = parse_args
        return parser

    return build
