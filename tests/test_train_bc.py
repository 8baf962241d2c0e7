"""Behaviour-cloning warm start, the multimodal (rgbd_touch + MiniLM) training path, and the train bench."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from experiments import cli
from experiments.training.bc import collect_expert_data, pretrain
from experiments.training.config import TrainConfig
from experiments.training.env import build_vec_env
from experiments.training.language import EmbeddingTable, all_texts
from experiments.training.session import RunPaths
from experiments.training.train import new_model
from perception.text import HashingTextEncoder


def _setup(task: str, **changes):
    config = TrainConfig(task=task, encoder="hashing", n_envs=1, n_steps=32, batch_size=32, net_arch=(32,),
                         token_dim=16, statistics_steps=20, bc_epochs=40, bc_batch_size=16, **changes)
    table = EmbeddingTable.build(HashingTextEncoder(), all_texts(task), "hashing")
    return config, table


def test_expert_data_and_cloning_fit_the_expert(tmp_path) -> None:
    config, table = _setup("reach")
    data = collect_expert_data(config, table, episodes=4)
    assert data.successes == 4 and len(data) == data.actions.shape[0] > 10
    assert set(data.observations) == {"proprio", "objects", "goal"}
    assert data.returns.shape == (len(data),) and np.all(data.returns < 1.5)
    venv = build_vec_env(config, table)
    try:
        model = new_model(config, venv, RunPaths(tmp_path), table)
        obs = {k: torch.as_tensor(v) for k, v in data.observations.items()}
        with torch.no_grad():
            before = float((model.policy._predict(obs, deterministic=True).clamp(-1, 1)
                            - torch.as_tensor(data.actions)).abs().mean())
        report = pretrain(model, data, config)
    finally:
        venv.close()
    assert report["curve"][-1]["nll"] < report["curve"][0]["nll"]
    assert report["mean_abs_action_error"] < 0.6 * before
    assert torch.allclose(model.policy.log_std, torch.full_like(model.policy.log_std, config.bc_log_std))


def test_bc_warmstart_run_records_its_pretraining(tmp_path) -> None:
    argv = ["train", "--task", "pick", "--bc-warmstart", "--steps", "32", "--runs-dir", str(tmp_path), "--name", "bc",
            "--encoder", "hashing", "--n-envs", "1", "--quiet"]
    for pair in ("n_steps=32", "batch_size=32", "eval_episodes=1", "net_arch=[16]", "token_dim=8",
                 "statistics_steps=20", "bc_episodes=2", "bc_epochs=2"):
        argv += ["--set", pair]
    assert cli.main(argv) == 0
    metrics = json.loads((tmp_path / "bc" / "metrics.json").read_text())
    assert metrics["bc_warmstart"] and metrics["bc"]["expert_episodes"] == 2
    assert len(metrics["bc"]["curve"]) == 2
    assert "BC warm start:" in (tmp_path / "bc" / "report.md").read_text()


def test_rgbd_touch_training_with_minilm_goals(tmp_path) -> None:
    """The real pipeline on every modality: cameras, touch, proprio and MiniLM sentence embeddings."""
    argv = ["train", "--task", "reach", "--obs-mode", "rgbd_touch", "--steps", "16", "--runs-dir", str(tmp_path),
            "--name", "mm", "--n-envs", "1", "--quiet", "--encoder", "minilm"]
    for pair in ("n_steps=16", "batch_size=16", "n_epochs=1", "eval_episodes=1", "token_dim=16", "cnn_width=8",
                 "image_size=32", "statistics_steps=10", "net_arch=[16]", "bc_episodes=1", "bc_epochs=1"):
        argv += ["--set", pair]
    assert cli.main(argv) == 0
    from agent.policy import load_sb3_policy

    policy = load_sb3_policy(tmp_path / "mm" / "policy.safetensors")
    assert {"rgb_front", "depth_wrist", "touch", "goal"} <= set(policy.observation_space.spaces)
    assert policy.observation_space["goal"].shape == (384,)
    embeddings = EmbeddingTable.load(tmp_path / "mm" / "embeddings.npz")
    assert embeddings.source == "minilm"
    mean, _ = policy.features_extractor.statistics("goal")
    assert float(mean.norm()) > 0.3  # MiniLM sentences share a large common direction, removed here
    metrics = json.loads((tmp_path / "mm" / "metrics.json").read_text())
    assert metrics["bc"]["expert_episodes"] == 1  # the reach recipe's warm start works on pixels too
    assert "skipped" in metrics["grounding"]  # ... while grounding needs per-object rows


@pytest.mark.slow
@pytest.mark.parametrize("vec_env", ["split", "subproc", "actors"])
def test_bench_train_measures_both_settings(capsys, vec_env: str) -> None:
    from experiments.bench.train import run

    figures = run(argparse.Namespace(task="reach", steps=64, rollout=32, repeats=1, update_threads=2,
                                     vec_env=vec_env, spare_worlds=2))
    assert [row["n_envs"] for row in figures["rows"]] == [1, 2]
    assert all(row["frames"] == 64 and row["fps"] > 0 for row in figures["rows"])
    assert figures["ratio"] == pytest.approx(figures["fps_2"] / figures["fps_1"])
    assert "2 envs / 1 env" in capsys.readouterr().out


def test_bench_train_table_and_ratio(monkeypatch, capsys) -> None:
    """The bench's bookkeeping: best-of-repeats per setting, their ratio, the side-by-side table."""
    from experiments.bench import train as bench

    timings = iter([100.0, 150.0, 120.0, 210.0])

    def fake_measure(task, n_envs, steps, rollout, update_threads, vec_env, spare_worlds):
        assert update_threads == 2 and spare_worlds is None
        fps = next(timings)
        return {"n_envs": n_envs, "frames": steps, "seconds": steps / fps, "fps": fps, "learner_cpu_s": 1.0}

    monkeypatch.setattr(bench, "_measure", fake_measure)
    figures = bench.run(argparse.Namespace(task="reach", steps=64, rollout=32, repeats=2, update_threads=2,
                                           vec_env="split", spare_worlds=None))
    assert figures["fps_1"] == 120.0 and figures["fps_2"] == 210.0 and figures["ratio"] == pytest.approx(1.75)
    assert figures["paired_ratios"] == [pytest.approx(1.5), pytest.approx(1.75)]
    assert figures["median_ratio"] == pytest.approx(1.625)
    out = capsys.readouterr().out
    assert "| 2 | 64 |" in out and "1.75x" in out and "meets the 1.6x goal" in out and "2 update thread(s)" in out
    assert "median 1.62x" in out or "median 1.63x" in out
    assert figures["update_threads"] == 2 and figures["vec_env"] == "split" and "2 envs split" in out
    with pytest.raises(ValueError, match="--rollout"):
        bench.run(argparse.Namespace(task="reach", steps=16, rollout=32, repeats=1, update_threads=1,
                                     vec_env="subproc", spare_worlds=None))


def test_cloning_adds_the_extra_loss_to_every_minibatch(tmp_path) -> None:
    """Continual learning passes replay/EWC in as `extra_loss`; it must shape every cloning step."""
    config, table = _setup("reach")
    data = collect_expert_data(config, table, episodes=2)
    venv = build_vec_env(config, table)
    try:
        model = new_model(config, venv, None, table)
        bias = model.policy.action_net.bias
        calls = []

        def pull_bias_up(policy):
            calls.append(1)
            return -1e3 * policy.action_net.bias.sum()  # dominates the cloning loss

        pretrain(model, data, config, extra_loss=pull_bias_up)
    finally:
        venv.close()
    batches = -(-len(data) // config.bc_batch_size)
    assert len(calls) == config.bc_epochs * batches
    # The extra term dominates, so Adam moves every bias by one learning rate per step, upwards.
    expected = torch.full_like(bias, config.bc_learning_rate * len(calls))
    assert torch.allclose(bias.detach(), expected, atol=2e-3), bias


def test_cosine_schedule_decays_the_cloning_learning_rate(tmp_path) -> None:
    """With `bc_lr_schedule: cosine` the steps shrink to zero: the summed step is half the constant schedule's."""
    config, table = _setup("reach", bc_lr_schedule="cosine")
    data = collect_expert_data(config, table, episodes=2)
    venv = build_vec_env(config, table)
    try:
        model = new_model(config, venv, None, table)
        bias = model.policy.action_net.bias
        pretrain(model, data, config, extra_loss=lambda policy: -1e3 * policy.action_net.bias.sum())
    finally:
        venv.close()
    steps = config.bc_epochs * -(-len(data) // config.bc_batch_size)
    rates = [config.bc_learning_rate * 0.5 * (1 + np.cos(np.pi * t / steps)) for t in range(steps)]
    assert torch.allclose(bias.detach(), torch.full_like(bias, sum(rates)), atol=2e-3), (bias, sum(rates))
    assert sum(rates) < 0.6 * config.bc_learning_rate * steps


def test_dart_noise_moves_the_states_but_keeps_the_expert_labels() -> None:
    clean_config, table = _setup("reach")
    noisy_config, _ = _setup("reach", bc_action_noise=0.5)
    clean = collect_expert_data(clean_config, table, episodes=1)
    noisy = collect_expert_data(noisy_config, table, episodes=1)
    steps = min(len(clean), len(noisy))
    assert not np.allclose(clean.observations["proprio"][1:steps], noisy.observations["proprio"][1:steps])
    assert set(np.unique(noisy.actions[:, 3])) <= {-1.0, 1.0}  # the expert's gripper label, never a noisy one
    with pytest.raises(ValueError, match="bc_action_noise"):
        _setup("reach", bc_action_noise=-0.1)
