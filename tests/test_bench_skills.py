"""`embodia bench skills`: shipped skills against their experts, from the same chain-like starts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from experiments.bench.skills import _hashing_table
from experiments.cli import main
from experiments.imitation.rollout import SkillEnv
from experiments.training.language import EmbeddingTable, all_texts
from perception.text import HashingTextEncoder


def test_the_expert_and_the_learned_policy_start_from_the_same_states() -> None:
    """The expert's env embeds sentences with the hashing encoder, the student's with another table: same starts."""
    other = EmbeddingTable.build(HashingTextEncoder(dim=64), all_texts("pick"), source="hashing-64")
    first, second = (SkillEnv("pick", "state", "chain", table, skill_text_fraction=1.0)
                     for table in (_hashing_table("pick"), other))
    try:
        for seed in (1_000_000, 1_000_001):
            (a, info_a), (b, info_b) = first.reset(seed), second.reset(seed)
            assert info_a["task_args"] == info_b["task_args"]
            for key in ("objects", "proprio"):
                np.testing.assert_array_equal(a[key], b[key])
    finally:
        first.close()
        second.close()


def test_bench_skills_measures_both_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "skills.json"
    assert main(["bench", "skills", "--tasks", "open", "--episodes", "3", "--json-out", str(out)]) == 0
    figures = json.loads(out.read_text())
    (row,) = figures["tasks"]
    assert row["task"] == "open" and row["expert"]["episodes"] == row["learned"]["episodes"] == 3
    assert row["expert"]["successes"] == 3  # the open expert does not fail from these starts
    assert 0 <= row["learned"]["successes"] <= 3
    assert row["learned_over_expert"] == pytest.approx(row["learned"]["rate"])
    assert "learned/expert" in capsys.readouterr().out


def test_bench_skills_crowds_both_the_experts_and_the_learned_policys_starts(tmp_path: Path, monkeypatch) -> None:
    from experiments.imitation.rollout import SkillEnv

    asked: list[bool] = []
    real_reset = SkillEnv.reset

    def recording(self, seed, args=None, crowd=False):
        asked.append(crowd)
        return real_reset(self, seed, args, crowd)

    monkeypatch.setattr(SkillEnv, "reset", recording)
    out = tmp_path / "skills.json"
    assert main(["bench", "skills", "--crowd", "--tasks", "place_in", "--episodes", "2", "--json-out", str(out)]) == 0
    figures = json.loads(out.read_text())
    (row,) = figures["tasks"]
    assert figures["crowd"] is True and row["expert"]["episodes"] == row["learned"]["episodes"] == 2
    assert asked == [True] * 4  # two crowded starts for the expert, the same two for the learned policy


def test_bench_skills_measures_a_perceived_state_skill(tmp_path: Path) -> None:
    """The rgbd_touch reach acts on the scene estimator's rows; the kitchen renders its 128-px front camera."""
    out = tmp_path / "skills.json"
    assert main(["bench", "skills", "--obs-mode", "rgbd_touch", "--tasks", "reach", "--episodes", "2",
                 "--json-out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["tasks"]
    assert row["learned"]["episodes"] == 2 and row["learned"]["successes"] == 2  # 100/100 on its card


@pytest.mark.parametrize("argv, phrase", [
    (["--tasks", "fly"], "no shipped state policy for task 'fly'"),
    (["--obs-mode", "depth"], "unknown observation set 'depth'"),
    (["--prefix", "teacher"], "teacher"),
    (["--episodes", "0"], "--episodes must be >= 1"),
    (["--obs-mode", "rgbd_touch", "--tasks", "fly"], "no shipped rgbd_touch policy for task 'fly'"),
    (["--crowd", "--tasks", "place_in", "pick"], "--crowd crowds a place's target; it takes only place_in, place_on"),
])
def test_bench_skills_refuses_bad_arguments_with_exit_2(argv: list[str], phrase: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "skills", *argv]) == 2
    assert phrase in capsys.readouterr().err


def test_evaluation_acts_on_one_torch_thread_and_restores_the_count() -> None:
    """The thread count changes a policy's float rounding and so its rollouts: evaluations fix it at one."""
    import torch

    from agent.policy import DEFAULT_DIR, load_sb3_policy, read_card
    from experiments.imitation.evaluate import evaluate_policy

    card = read_card(DEFAULT_DIR / "open.json")
    policy = load_sb3_policy(card.path)
    seen: list[int] = []

    class Recording:
        def __getattr__(self, name: str):
            return getattr(policy, name)

        def predict(self, obs, deterministic=True):
            seen.append(torch.get_num_threads())
            return policy.predict(obs, deterministic=deterministic)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        evaluate_policy(Recording(), "open", "state", "chain", _hashing_table("open"), 1)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
