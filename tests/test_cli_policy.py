"""The CLI's output rules: strict JSON (null for NaN/inf, said so), shared file modes, no orphan temp files on
interrupts (Ctrl-C or SIGTERM), plain run names, and `--steps` rounding said aloud."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from causal import atomic
from experiments import cli
from experiments.common.errors import InputError
from experiments.common.jsonio import parse_json, to_json_text, write_json
from experiments.common.names import plain_name


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _strict_load(text: str):
    def refuse(name: str):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_floats_become_null_and_are_listed() -> None:
    data = {"rate": float("nan"), "rows": [{"x": 1.5}, {"x": float("inf")}], "ci": (np.float32("-inf"), 0.5),
            "n": np.int64(3), "fine": 2.0}
    loaded = _strict_load(to_json_text(data))
    assert loaded == {"rate": None, "rows": [{"x": 1.5}, {"x": None}], "ci": [None, 0.5], "n": 3, "fine": 2.0,
                      "non_finite": ["rate", "rows[1].x", "ci[0]"]}


def test_finite_documents_get_no_note_and_lists_get_one_per_element() -> None:
    assert "non_finite" not in to_json_text({"a": 1.0, "b": [1, 2]})
    loaded = _strict_load(to_json_text([{"answer": math.nan}, {"answer": 1.0}]))
    assert loaded == [{"answer": None, "non_finite": ["answer"]}, {"answer": 1.0}]


def test_metrics_files_are_strict_json_with_shared_mode(tmp_path: Path) -> None:
    path = write_json(tmp_path / "metrics.json", {"final_eval_success": float("nan")})
    assert _strict_load(path.read_text()) == {"final_eval_success": None, "non_finite": ["final_eval_success"]}
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_causal_query_json_never_prints_nan(tmp_path: Path, capsys) -> None:
    model = tmp_path / "m.json"
    model.write_text(json.dumps({"format_version": 1, "id": "m", "scm_type": "linear_gaussian", "nodes": ["x", "y"],
                                 "equations": {"x": {"parents": [], "coefficients": {}, "noise_std": 1},
                                               "y": {"parents": ["x"], "coefficients": {"x": 2}, "noise_std": 0}}}))
    query = tmp_path / "q.json"
    query.write_text(json.dumps([{"type": "interventional_mean", "target": "y", "do": {"x": 0.5}}]))
    assert cli.main(["causal", "query", str(model), str(query), "--json"]) == 0
    answers = _strict_load(capsys.readouterr().out)
    assert answers[0]["answer"] == pytest.approx(1.0)


def test_parse_json_bounds_depth_and_names_the_source() -> None:
    assert parse_json('{"a": "[[[[ inside a string ]"}', "q.json") == {"a": "[[[[ inside a string ]"}
    with pytest.raises(InputError, match=r"q\.json: JSON nests deeper than 64 levels"):
        parse_json("[" * 100_000 + "]" * 100_000, "q.json")
    with pytest.raises(InputError, match=r"q\.json: not valid JSON"):
        parse_json("{", "q.json")


def test_atomic_writes_get_the_usual_mode_not_0600(tmp_path: Path) -> None:
    for package_atomic in (atomic,):
        target = package_atomic.atomic_write_text(tmp_path / "out.txt", "hello")
        assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_keyboard_interrupt_mid_write_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "out.jsonl").write_text("old\n")

    def write(temp: str) -> None:
        Path(temp).write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write(tmp_path / "out.jsonl", write)
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    assert (tmp_path / "out.jsonl").read_text() == "old\n"


@pytest.mark.parametrize("interrupt", ["keyboard", "sigterm"])
def test_interrupted_export_leaves_no_orphan(interrupt: str, tmp_path: Path, capsys, monkeypatch) -> None:
    import memory.transfer as transfer

    db = tmp_path / "s.db"
    for number in range(3):
        assert cli.main(["memory", "add-fact", f"obj{number}", "in", "bowl", "--db", str(db)]) == 0
    real_lines = transfer._fact_lines

    def lines_then_interrupt(conn):
        for index, line in enumerate(real_lines(conn)):
            if index == 1:  # mid-write: the header and one record are in the temporary file
                if interrupt == "sigterm":
                    os.kill(os.getpid(), signal.SIGTERM)
                else:
                    raise KeyboardInterrupt
            yield line

    monkeypatch.setattr(transfer, "_fact_lines", lines_then_interrupt)
    before = sorted(p.name for p in tmp_path.iterdir())
    code = cli.main(["memory", "export", "--out", str(tmp_path / "export.jsonl"), "--db", str(db)])
    assert code == cli.EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no export, no .export.jsonl.* temp file
    assert signal.getsignal(signal.SIGTERM) is not cli._raise_interrupt  # the handler is only installed per run


@pytest.mark.parametrize("name", ["../x", "..", ".", "/tmp/x", "a/b", "a\\b", "", " x", "-x", "x" * 201, "a\x00b"])
def test_plain_name_refuses_paths(name: str) -> None:
    with pytest.raises(InputError, match="plain folder name"):
        plain_name(name)


@pytest.mark.parametrize("name", ["reach_s0", "sweep.lr0.0003", "task-reach_seed1", "a..b"])
def test_plain_name_accepts_names(name: str) -> None:
    assert plain_name(name) == name


def test_steps_rounding_is_said_and_recorded(tmp_path: Path, capsys, monkeypatch) -> None:
    import experiments.training.train as training

    seen = {}

    def fake_train(config, paths, checkpoint, progress, command):
        seen["total"] = config.rounded(config.total_steps)
        seen["requested"] = config.total_steps
        return {"steps": seen["total"], "elapsed_s": 1.0, "steps_per_second": 1.0, "final_eval_success": 0.0,
                "final_eval_ci95": [0.0, 1.0]}

    monkeypatch.setattr(training, "train", fake_train)
    code = cli.main(["train", "--task", "reach", "--steps", "512", "--encoder", "hashing", "--runs-dir",
                     str(tmp_path), "--name", "r"])
    captured = capsys.readouterr()
    assert code == 0
    assert seen == {"total": 1024, "requested": 512}  # reach: whole rollouts of n_steps 512 x 2 envs
    assert "512 steps rounded up to 1,024" in captured.err and "1024 steps" in captured.out
