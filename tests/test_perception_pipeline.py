"""Perception against the real kitchen: frame collection, `pretrain-perception`, `embed`, the bench."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

from experiments.cli import main
from experiments.kitchen.perception_data import CollectionConfig, collect_frames, next_task

SMALL = CollectionConfig(obs_mode="rgbd_touch", image_size=32, tasks_per_episode=2)


def test_next_task_fits_the_scene() -> None:
    rng = np.random.default_rng(0)
    facts = [
        ["on", "red_block", "table"],
        ["on", "green_block", "red_block"],
        ["on", "blue_block", "table"],
        ["in", "yellow_block", "bowl"],
        ["on", "mug", "table"],
        ["gripper_empty"],
        ["closed", "drawer"],
    ]
    seen = {next_task(facts, rng) for _ in range(300)}
    names = {spec.name for spec in seen}
    assert {"pick", "place_in", "place_on", "open"} <= names and "close" not in names
    for spec in seen:
        assert spec.name in ("open", "close") or spec.args[0] in ("blue_block", "mug"), spec  # free, on the table
        assert tuple(spec.args[1:2]) != ("drawer",), spec  # drawer closed: nothing goes in
        if spec.name == "place_on":
            assert spec.args[1] in ("plate", "blue_block"), spec


def test_collection_is_seeded_and_labelled() -> None:
    first, space = collect_frames([3], SMALL)
    again, _ = collect_frames([3], SMALL)
    assert len(first) > 5 and set(first.obs) == {"rgb_front", "depth_front", "rgb_wrist", "depth_wrist", "touch"}
    for key in first.obs:
        np.testing.assert_array_equal(first.obs[key], again.obs[key])
        assert space[key].shape == first.obs[key].shape[1:]
    assert first.facts == again.facts
    assert all(any(f[0] in ("open", "closed") for f in frame) for frame in first.facts)
    assert all(any(f[0] in ("holding", "gripper_empty") for f in frame) for frame in first.facts)
    with pytest.raises(ValueError, match="obs_mode"):
        collect_frames([0], CollectionConfig(obs_mode="state"))


def test_pretrain_then_embed_from_the_cli(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code = main(
        [
            "pretrain-perception",
            "--episodes",
            "2",
            "--eval-episodes",
            "1",
            "--seed",
            "5",
            "--out",
            str(run),
            "--image-size",
            "32",
            "--tasks-per-episode",
            "2",
            "--epochs",
            "2",
            "--token-dim",
            "32",
            "--text-encoder",
            "hashing",
            "--no-progress",
        ]
    )
    assert code == 0
    assert {"perception.pt", "metrics.json", "report.md", "config.yaml", "frames_train.npz"} <= {
        p.name for p in run.iterdir()
    }
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["held_out"]["retrieval_hard"]["top1"] <= 1.0
    assert "grasp" in metrics["held_out"] and metrics["frames"]["held_out"] > 0
    assert "top-1 of 8" in (run / "report.md").read_text()

    from envs.household import HouseholdEnv
    from perception import MultiModalExtractor

    env = HouseholdEnv(obs_mode="rgbd_touch", image_size=32)
    policy_space = spaces.Dict({**env.observation_space.spaces, "goal": spaces.Box(-1, 1, (384,), np.float32)})
    env.close()
    extractor = MultiModalExtractor(policy_space, token_dim=32, pretrained=run / "perception.pt")
    assert extractor.pretrained_loaded == ["camera_front", "camera_wrist", "touch"]

    assert (
        main(
            [
                "pretrain-perception",
                "--episodes",
                "2",
                "--eval-episodes",
                "1",
                "--seed",
                "5",
                "--out",
                str(run),
                "--image-size",
                "32",
                "--epochs",
                "1",
                "--token-dim",
                "32",
                "--text-encoder",
                "hashing",
                "--no-progress",
                "--resume",
            ]
        )
        == 0
    )

    out = tmp_path / "emb.npz"
    assert (
        main(
            [
                "embed",
                "--episodes",
                "1",
                "--checkpoint",
                str(run / "perception.pt"),
                "--out",
                str(out),
                "--text-encoder",
                "hashing",
                "--no-progress",
            ]
        )
        == 0
    )
    with np.load(out) as data:
        n = len(data["holding"])
        assert data["vision"].shape == (n, 384) and data["touch"].shape == (n, 384) and n > 0
        assert set(data["drawer"].tolist()) <= {"open", "closed"}
    assert (tmp_path / "emb_pca.png").stat().st_size > 1000  # beside --out, not beside the checkpoint
    assert not (run / "embeddings_pca.png").exists() and not (run / "emb_pca.png").exists()


def test_cli_reports_bad_input(tmp_path: Path, capsys) -> None:
    assert main(["pretrain-perception", "--episodes", "0", "--out", str(tmp_path / "r")]) == 2
    assert "--episodes must be at least 1" in capsys.readouterr().err
    assert main(["embed", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "e.npz")]) == 2
    assert "pretrain-perception" in capsys.readouterr().err
    assert main(["pretrain-perception", "--episodes", "1", "--out", str(tmp_path / "r"), "--resume"]) == 2
    assert "frames_train.npz" in capsys.readouterr().err


def test_bench_helpers_measure_something(monkeypatch) -> None:
    from experiments.bench import perception as bench

    monkeypatch.setattr(bench, "SPACES", (("state", 64), ("rgbd_touch", 32)))  # the full set runs in the slow test
    rows = bench.bench_extractors(min_seconds=0.0)
    assert [(r["obs"], r["fusion"]) for r in rows][:2] == [("state", "concat"), ("state", "attention")]
    assert all(r["obs_per_s_b64"] > 0 and r["obs_per_s_b1"] > 0 for r in rows)
    assert "rgbd_touch 32x32" in bench.render(
        {
            "torch_threads": 1,
            "extractor": rows,
            "minilm": {
                "load_s": 1.0,
                "sentences": 2,
                "cold_per_s": 1.0,
                "cached_per_s": 2.0,
                "cold_single_per_s": 1.0,
                "cached_single_per_s": 2.0,
            },
            "ppo": [],
        }
    )


@pytest.mark.slow
def test_bench_perception_run_end_to_end() -> None:
    from experiments.bench import perception as bench

    result = bench.run(Namespace(min_seconds=0.2, sentences=32, ppo_steps=64, ppo_modes="state"))
    assert result["minilm"]["cached_per_s"] > result["minilm"]["cold_per_s"]
    assert 0.0 < result["ppo"][0]["share"] < 1.0


@pytest.mark.slow
def test_real_kitchen_alignment_beats_chance_and_untrained(tmp_path: Path) -> None:
    """Grounding on real frames with real MiniLM text: the trained model must clearly beat the untrained one."""
    import torch

    from perception import default_text_encoder
    from perception.alignment import AlignmentConfig, AlignmentModel
    from perception.alignment_training import evaluate_alignment, train_alignment

    config = CollectionConfig(obs_mode="rgbd_touch", image_size=64, tasks_per_episode=4)
    train, space = collect_frames(list(range(24)), config)
    held_out, _ = collect_frames(list(range(100_000, 100_006)), config)
    text = default_text_encoder("minilm")
    align = AlignmentConfig(epochs=20)
    model, _history, vocab = train_alignment(train, space, text, align, seed=0)
    trained = evaluate_alignment(model, held_out, text, vocab, prior_facts=train.facts)
    torch.manual_seed(0)
    untrained = evaluate_alignment(AlignmentModel(space, text.dim, align).eval(), held_out, text, vocab)
    # The mean over predicates is not inflated by facts that hardly ever change ("the mug is on the table").
    hard, baseline = trained["retrieval_hard"]["macro_top1"], untrained["retrieval_hard"]["macro_top1"]
    assert hard > baseline + 0.3, (trained["retrieval_hard"], untrained["retrieval_hard"])
    assert hard > trained["prior_retrieval_hard"]["macro_top1"] + 0.1
    assert trained["grasp"]["accuracy"] > 0.9, trained["grasp"]


def test_goal_wrapper_on_the_kitchen() -> None:
    from envs.household import HouseholdEnv
    from perception import GoalEmbeddingWrapper, HashingTextEncoder

    encoder = HashingTextEncoder()
    env = GoalEmbeddingWrapper(HouseholdEnv(task="pick", obs_mode="state"), encoder)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    np.testing.assert_allclose(obs["goal"], encoder.encode([info["instruction"]])[0])
    instruction = env.set_task("open", ["drawer"])
    obs, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
    np.testing.assert_allclose(obs["goal"], encoder.encode([instruction])[0])
    env.close()
