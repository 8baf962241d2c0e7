"""Exact resumption: kill a real training process with SIGKILL mid-run, resume, and get the same policy.

The uninterrupted reference and the killed-and-resumed run must end with bit-identical weights: the
checkpoint carries the optimizer, RNG states and counters, and envs are re-seeded at checkpoint
boundaries. The kill lands after the first checkpoint, so at most one interval is lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from experiments import cli
from experiments.training.checkpoint import list_checkpoints, load_checkpoint
from experiments.training.config import load_config
from experiments.training.train import open_run, train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["n_steps=16", "batch_size=16", "n_epochs=2", "checkpoint_every=32", "eval_every=100000",
        "eval_episodes=1", "net_arch=[16]", "token_dim=8", "keep_checkpoints=10", "statistics_steps=20",
        "bc_episodes=2", "bc_epochs=1", "grounding_steps=5"]
EXTENDED = "lr_schedule=constant"
"""Extending total_steps keeps a run exact only with a constant rate (a linear schedule is relative to the total)."""
TOTAL = 192


def _cli(runs: Path, name: str, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "experiments.cli", "train", "--task", "reach", "--encoder", "hashing",
               "--n-envs", "1", "--steps", str(TOTAL), "--runs-dir", str(runs), "--name", name, "--quiet"]
    for pair in TINY:
        command += ["--set", pair]
    return command + list(extra)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def _policy_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _kill_after_first_checkpoint(runs: Path, name: str) -> int:
    process = subprocess.Popen(_cli(runs, name), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    checkpoints = runs / name / "checkpoints"
    while not list_checkpoints(checkpoints):
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    return list_checkpoints(checkpoints)[-1][0]


def _tiny_config(total: int, extend: bool = True, **flags):
    import yaml

    assignments = {key: yaml.safe_load(value) for key, value in (pair.split("=") for pair in
                                                                   [*TINY, *([EXTENDED] if extend else [])])}
    return load_config("reach", assignments, {"encoder": "hashing", "n_envs": 1, "total_steps": total, **flags})


def _train_in_process(runs: Path, name: str, total: int, resume: bool = False, extend: bool = True,
                      **flags) -> dict:
    config = None if resume else _tiny_config(total, extend, **flags)
    config, paths, checkpoint = open_run(name, runs, resume, config, {"total_steps": total} if resume else None)
    return train(config, paths, checkpoint, progress=False, command=f"{name} {total}")


def _assert_same_policy(a: Path, b: Path) -> None:
    ours, theirs = _policy_weights(a), _policy_weights(b)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), f"{key} differs after resume"


def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path: Path) -> None:
    """Stop at a checkpoint (64 steps), resume to 128: same weights as training 128 steps straight."""
    first = _train_in_process(tmp_path, "resumed", 64)
    assert first["steps"] == 64
    second = _train_in_process(tmp_path, "resumed", 128, resume=True)
    assert second["steps"] == 128 and [h["step"] for h in second["history"]] == [64, 128]
    assert (tmp_path / "resumed" / "command.txt").read_text().splitlines() == ["resumed 64", "resumed 128"]
    _train_in_process(tmp_path, "straight", 128)
    _assert_same_policy(tmp_path / "resumed" / "policy.safetensors", tmp_path / "straight" / "policy.safetensors")
    ours, theirs = (load_checkpoint(list_checkpoints(tmp_path / n / "checkpoints")[-1][1]) for n in
                    ("resumed", "straight"))
    assert ours.step == theirs.step == 128
    assert ours.state["rng"]["numpy"][1].tolist() == theirs.state["rng"]["numpy"][1].tolist()
    assert torch.equal(ours.state["rng"]["torch"], theirs.state["rng"]["torch"])


def test_resume_with_actor_workers_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    """`vec_env: actors` draws its workers' action noise from (seed, step, rank): a resume at a checkpoint
    must continue exactly, even though the workers are new processes."""
    actors = {"n_envs": 2, "vec_env": "actors"}  # rollouts of 2 x 16 steps; checkpoints every 32
    _train_in_process(tmp_path, "resumed", 64, **actors)
    second = _train_in_process(tmp_path, "resumed", 128, resume=True)
    assert second["steps"] == 128
    _train_in_process(tmp_path, "straight", 128, **actors)
    _assert_same_policy(tmp_path / "resumed" / "policy.safetensors", tmp_path / "straight" / "policy.safetensors")
    _train_in_process(tmp_path, "lockstep", 128, n_envs=2, vec_env="split")
    with pytest.raises(AssertionError, match="differs after resume"):  # the check can tell runs apart
        _assert_same_policy(tmp_path / "lockstep" / "policy.safetensors", tmp_path / "straight" / "policy.safetensors")


def test_sigkill_then_resume_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    """A real kill: SIGKILL the training process after its first checkpoint, then resume from the CLI."""
    killed_at = _kill_after_first_checkpoint(tmp_path, "killed")
    assert 32 <= killed_at < TOTAL  # at most one 32-step interval is lost
    assert not (tmp_path / "killed" / "policy.safetensors").exists()
    resumed = subprocess.run(_cli(tmp_path, "killed", "--resume"), cwd=ROOT, env=_env(), capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming at step {killed_at}" in resumed.stdout
    _train_in_process(tmp_path, "straight", TOTAL, extend=False)  # the CLI run's own (linear) schedule
    _assert_same_policy(tmp_path / "killed" / "policy.safetensors", tmp_path / "straight" / "policy.safetensors")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_checkpoint_is_refused_and_nothing_is_overwritten(tmp_path: Path, damage: str, capsys) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("task: reach\nencoder: hashing\nn_envs: 1\n")
    path = run / "checkpoints" / "step_0000000064.ckpt"
    path.write_bytes(b"PK\x03\x04 truncated zip" if damage == "truncate" else os.urandom(256))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    code = cli.main(["train", "--resume", "--name", "run", "--runs-dir", str(tmp_path), "--quiet"])
    assert code == 2
    stderr = capsys.readouterr().err
    assert "corrupt or foreign checkpoint" in stderr and "step_0000000064.ckpt" in stderr
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before
