"""Sweeps: config validation, trial commands, skipping finished trials, resuming partial ones, aggregation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.training.sweep import aggregate, load_sweep, run_trial, trial_command, trial_status


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


@pytest.fixture()
def sweep(tmp_path: Path):
    return load_sweep(_write(tmp_path, f"""
name: demo
runs_dir: {tmp_path / 'runs'}
train: {{steps: 512, encoder: hashing, bc_warmstart: true}}
grid:
  task: [reach, push]
  seed: [0, 1, 2]
  learning_rate: [0.001]
"""))


def test_grid_expands_to_named_trials_with_train_flags(sweep) -> None:
    assert len(sweep.trials) == 6
    assert {t.group for t in sweep.trials} == {"task=reach, learning_rate=0.001", "task=push, learning_rate=0.001"}
    argv = trial_command(sweep, sweep.trials[0], resume=False)
    assert argv[3:6] == ["train", "--name", sweep.trials[0].name]
    assert "--bc-warmstart" in argv and "--set=learning_rate=0.001" in argv and "--resume" not in argv
    assert trial_command(sweep, sweep.trials[0], resume=True)[-1] == "--resume"


@pytest.mark.parametrize("text, message", [
    ("grid: {task: [reach]}", "needs 'name' and 'grid'"),
    ("name: x\ngrid: {task: []}", "non-empty list"),
    ("name: x\ngrid: {seed: [0]}", "'task' list"),
    ("name: x\ntrain: {lr: 1}\ngrid: {task: [reach]}", "unknown train flags"),
    ("name: x\ngrid: {task: [reach]}\nextra: 1", "unknown keys"),
    ("name: [unclosed", "not valid YAML"),
])
def test_malformed_configs_are_rejected_clearly(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_sweep(_write(tmp_path, text))


def test_finished_trials_are_not_run_again_and_partial_ones_resume(sweep, monkeypatch) -> None:
    done, partial, new = sweep.trials[:3]
    (sweep.folder / done.name).mkdir(parents=True)
    (sweep.folder / done.name / "metrics.json").write_text(json.dumps({"final_eval_success": 0.75}))
    (sweep.folder / partial.name / "checkpoints").mkdir(parents=True)
    (sweep.folder / partial.name / "checkpoints" / "step_1024.zip").write_bytes(b"x")
    assert [trial_status(sweep, t) for t in (done, partial, new)] == ["done", "partial", "new"]

    launched = []

    def fake_run(argv, **kwargs):
        launched.append(argv)
        name = argv[argv.index("--name") + 1]
        (sweep.folder / name).mkdir(parents=True, exist_ok=True)
        (sweep.folder / name / "metrics.json").write_text(json.dumps({"final_eval_success": 0.5}))

        class Result:
            returncode = 0

        return Result()

    monkeypatch.setattr("experiments.training.sweep.subprocess.run", fake_run)
    assert run_trial(sweep, done)["success"] == 0.75 and not launched
    assert run_trial(sweep, partial)["status"] == "partial" and launched[-1][-1] == "--resume"
    assert run_trial(sweep, new)["status"] == "new" and "--resume" not in launched[-1]


def test_aggregate_gives_mean_std_and_interval(sweep) -> None:
    results = [{"success": s} for s in (0.9, 1.0, 0.8, 0.2, 0.4, 0.3)]
    rows = {r["group"]: r for r in aggregate(sweep, results)}
    reach = rows["task=reach, learning_rate=0.001"]
    assert reach["mean"] == pytest.approx(0.9) and reach["std"] == pytest.approx(0.1)
    assert reach["ci95"][0] < 0.9 < reach["ci95"][1]
    assert rows["task=push, learning_rate=0.001"]["mean"] == pytest.approx(0.3)
