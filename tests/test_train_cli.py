"""`embodia train` / `embodia eval` end to end on tiny budgets, their errors, and shipping a policy."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from agent.policy import LearnedSkillPolicy, LearnedSkillProvider, find_cards
from agent.skills import SkillCall
from envs.household import HouseholdEnv
from experiments import cli
from experiments.kitchen.world import KitchenWorld, ScriptedProvider

TINY = ["--encoder", "hashing", "--n-envs", "1", "--quiet", "--set", "n_steps=32", "--set", "batch_size=32",
        "--set", "n_epochs=1", "--set", "checkpoint_every=32", "--set", "eval_every=32", "--set", "eval_episodes=2",
        "--set", "net_arch=[16]", "--set", "token_dim=8", "--set", "statistics_steps=20",
        "--set", "bc_episodes=2", "--set", "bc_epochs=1", "--set", "grounding_steps=5"]


def _train(runs: Path, name: str, steps: int = 64, *extra: str) -> int:
    return cli.main(["train", "--task", "reach", "--steps", str(steps), "--runs-dir", str(runs), "--name", name,
                     *TINY, *extra])


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    assert _train(runs, "tiny") == 0
    return runs


def test_train_writes_the_run_folder(trained_run: Path) -> None:
    run = trained_run / "tiny"
    for name in ("config.yaml", "command.txt", "embeddings.npz", "metrics.json", "policy.safetensors", "policy.json",
                 "report.md", "plots/learning_curve.png"):
        assert (run / name).is_file(), name
    assert list((run / "tb").rglob("events.out.tfevents.*")), "no TensorBoard events"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000000032.ckpt", "step_0000000064.ckpt"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert [h["step"] for h in metrics["history"]] == [32, 64]
    assert metrics["steps"] == 64 and 0.0 <= metrics["final_eval_success"] <= 1.0
    assert metrics["requested_steps"] == 64
    shared = 0o666 & ~_umask()
    for name in ("config.yaml", "metrics.json", "policy.json", "report.md", "checkpoints/step_0000000064.ckpt"):
        assert (run / name).stat().st_mode & 0o777 == shared, name  # not mkstemp's owner-only 0600
    assert (run / "plots/learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Training run `tiny`" in (run / "report.md").read_text()


def test_eval_reports_rates_with_intervals_videos_and_ships(trained_run: Path, tmp_path: Path, capsys) -> None:
    code = cli.main(["eval", "--run", "tiny", "--runs-dir", str(trained_run), "--episodes", "6", "--videos", "1",
                     "--quiet", "--ship", "--policy-dir", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "Overall:" in out and "95% CI" in out
    run = trained_run / "tiny"
    result = json.loads((run / "eval.json").read_text())
    summary = result["summary"]
    assert summary["episodes"] == 6 and len(summary["ci95"]) == 2
    assert sum(row["episodes"] for row in summary["by_argument"].values()) == 6
    assert set(summary["by_argument"]) == {"red_block", "green_block", "blue_block", "yellow_block", "mug"}
    assert sum(row["episodes"] for row in summary["by_template"].values()) == 6
    assert (run / "videos" / "episode_00.gif").read_bytes()[:6] == b"GIF89a"
    assert "## Evaluation" in (run / "report.md").read_text()
    cards = find_cards(tmp_path)
    assert set(cards) == {"reach"} and cards["reach"].path.name == "reach.safetensors"
    assert cards["reach"].meta["eval"]["episodes"] == 6 and "embodia" in cards["reach"].meta["train_command"]


def test_shipped_policy_drives_the_agent_in_the_kitchen(trained_run: Path, tmp_path: Path) -> None:
    from experiments.training.run_eval import ship_policy

    ship_dir = tmp_path / "policies"
    card = json.loads((trained_run / "tiny" / "policy.json").read_text())
    card["eval"]["source"] = "embodia eval"
    (trained_run / "tiny" / "policy.json").write_text(json.dumps(card))
    ship_policy(trained_run / "tiny", ship_dir)
    env = HouseholdEnv(task="none")
    world = KitchenWorld(env)
    try:
        world.reset(seed=3)
        scripted = ScriptedProvider(world)
        from perception.text import HashingTextEncoder

        learned = LearnedSkillProvider(scripted.policy_for, mode="learned", policy_dir=ship_dir,
                                       encoder=HashingTextEncoder())
        call = SkillCall("reach", ("mug",))
        policy = learned.policy_for(call)
        assert isinstance(policy, LearnedSkillPolicy) and policy.name == "ppo:reach"
        policy.reset(call)
        obs, info = world.start_skill(call)
        for _ in range(3):
            action = policy.act(obs, info)
            assert action.shape == (4,) and np.all(np.isfinite(action))
            obs, _, _, _, info = world.step(action)
        assert learned.policy_for(SkillCall("pick", ("mug",))) is scripted.policy_for(SkillCall("pick", ("mug",)))
        strict = LearnedSkillProvider(scripted.policy_for, mode="auto", policy_dir=ship_dir, threshold=1.0)
        assert "threshold" in strict.explain(call)
        assert strict.policy_for(call) is scripted.policy_for(call)
    finally:
        env.close()


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--task", "fly"], "invalid choice: 'fly'"),
    (["train", "--task", "reach", "--obs-mode", "x"], "invalid choice: 'x'"),
    (["train", "--task", "reach", "--warp"], "unrecognized arguments: --warp"),
])
def test_unknown_task_or_option_exits_2_with_the_valid_ones(argv, message, capsys) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    if "fly" in message:
        assert "reach" in err and "place_in" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["train"], "--task is required; valid tasks: reach, pick"),
    (["train", "--task", "reach", "--set", "lr=1"], "unknown config keys ['lr']; valid keys:"),
    (["train", "--task", "reach", "--set", "n_envs=0"], "n_envs must be a positive integer"),
    (["train", "--resume"], "--resume needs the --name"),
    (["eval", "--run", "nope"], "no run named 'nope'"),
])
def test_bad_input_is_a_clear_error_with_exit_2(argv, message, tmp_path, capsys) -> None:
    assert cli.main([*argv, "--runs-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_existing_run_is_not_overwritten(trained_run: Path, capsys) -> None:
    before = (trained_run / "tiny" / "policy.safetensors").read_bytes()
    assert _train(trained_run, "tiny") == 2
    assert "already exists; pass --resume" in capsys.readouterr().err
    assert (trained_run / "tiny" / "policy.safetensors").read_bytes() == before


def test_resume_refuses_an_incompatible_checkpoint(trained_run: Path, tmp_path: Path, capsys) -> None:
    import shutil

    run = tmp_path / "other"
    shutil.copytree(trained_run / "tiny", run)
    text = (run / "config.yaml").read_text().replace("token_dim: 8", "token_dim: 16")
    (run / "config.yaml").write_text(text)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert cli.main(["train", "--resume", "--name", "other", "--runs-dir", str(tmp_path), "--quiet"]) == 2
    assert "incompatible with this run (token_dim: checkpoint 8 vs run 16)" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_shipping_needs_a_proper_evaluation(tmp_path: Path, capsys) -> None:
    assert _train(tmp_path, "fresh", 32) == 0
    assert cli.main(["eval", "--run", "fresh", "--runs-dir", str(tmp_path), "--episodes", "1", "--videos", "0",
                     "--quiet"]) == 0
    from experiments.training.run_eval import ship_policy

    card = json.loads((tmp_path / "fresh" / "policy.json").read_text())
    card["eval"]["source"] = "training evaluation"
    (tmp_path / "fresh" / "policy.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="has only its training evaluation"):
        ship_policy(tmp_path / "fresh", tmp_path / "ship")


def test_eval_on_ray_gives_exactly_the_serial_numbers(trained_run: Path) -> None:
    pytest.importorskip("ray", reason="the distributed extra is not installed")
    from experiments.common.distributed import shutdown_ray

    run = trained_run / "tiny"
    results = []
    for extra in ([], ["--ray", "--ray-workers", "2"]):
        assert cli.main(["eval", "--run", "tiny", "--runs-dir", str(trained_run), "--episodes", "5", "--videos", "0",
                         "--quiet", *extra]) == 0
        results.append(json.loads((run / "eval.json").read_text()))
    shutdown_ray()
    serial, parallel = results
    assert parallel["episodes"] == serial["episodes"] and parallel["summary"] == serial["summary"]
    assert parallel["value_range"] == serial["value_range"]


def test_a_checkpoint_written_before_neighbour_tokens_existed_is_read_as_without_them(tmp_path: Path) -> None:
    from dataclasses import replace

    from experiments.common.errors import InputError
    from experiments.training.checkpoint import ARCHITECTURE, Checkpoint, check_compatible
    from experiments.training.config import load_config

    config = load_config("reach", {}, {"obs_mode": "state"})
    meta = {k: v for k, v in config.to_dict().items() if k in ARCHITECTURE and k != "neighbour_tokens"}
    old = Checkpoint(tmp_path / "step_0000000001.ckpt", 1, meta, {}, {}, None, {})
    check_compatible(old, config)  # the key is missing: made without neighbour tokens, as this run
    with pytest.raises(InputError, match="neighbour_tokens: checkpoint False vs run True"):
        check_compatible(old, replace(config, neighbour_tokens=True))


def test_ppo_trains_and_resumes_a_binned_head(tmp_path: Path) -> None:
    """`--set action_bins=N` in `embodia train`: PPO runs on the categorical head, saves it, and a resume keeps it."""
    from agent.policy_heads import BinnedActorCriticPolicy
    from agent.policy_io import load_policy

    assert _train(tmp_path, "binned", 32, "--set", "action_bins=7") == 0
    policy = load_policy(tmp_path / "binned" / "policy.safetensors")
    assert isinstance(policy, BinnedActorCriticPolicy) and policy.action_net.out_features == 4 * 7
    assert cli.main(["train", "--resume", "--name", "binned", "--runs-dir", str(tmp_path), "--steps", "64",
                     "--quiet"]) == 0
    assert json.loads((tmp_path / "binned" / "metrics.json").read_text())["steps"] == 64
    assert isinstance(load_policy(tmp_path / "binned" / "policy.safetensors"), BinnedActorCriticPolicy)
