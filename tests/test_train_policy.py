"""Learned skill policies in the agent: goal sentences, cards, the provider's choice, shipped policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agent.policy import (
    DEFAULT_DIR,
    FORMAT,
    LearnedSkillProvider,
    find_cards,
    goal_text_for,
    load_sb3_policy,
    read_card,
    skill_goal_text,
    task_for_skill,
)
from agent.policy_features import StandardizedExtractor
from agent.skills import SkillCall


def test_goal_sentences_match_the_planner_and_name_the_held_object() -> None:
    assert skill_goal_text("reach", ("mug",)) == SkillCall("reach", ("mug",)).text
    assert skill_goal_text("push", ("red_block", "left")) == "push the red block to the left"
    assert skill_goal_text("place_in", ("red_block", "bowl")) == "put the red block in the bowl"
    assert skill_goal_text("place_on", ("mug", "plate")) == "put the mug on the plate"
    place = SkillCall("place", ("bowl",))
    assert task_for_skill(place) == "place_in" and task_for_skill(SkillCall("place", ("plate",))) == "place_on"
    assert goal_text_for(place, {"task": "place_in(green_block, bowl)"}) == "put the green block in the bowl"
    with pytest.raises(ValueError, match="needs info\\['task'\\]"):
        goal_text_for(place, {"task": "none"})


def _card(tmp_path: Path, **changes) -> Path:
    (tmp_path / "reach.safetensors").write_bytes(b"weights")
    card = {"format": FORMAT, "task": "reach", "file": "reach.safetensors", "obs_mode": "state", "encoder": "hashing",
            "goal_dim": 384, "eval": {"rate": 0.9, "episodes": 100}, "train_command": "embodia train --task reach"}
    card.update(changes)
    path = tmp_path / "reach.json"
    path.write_text(json.dumps(card))
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"format": "other/1"}, "expected a card with format"),
    ({"file": "missing.safetensors"}, "names policy file 'missing.safetensors'"),
    ({"file": "reach.pt"}, "must be .safetensors files"),
    ({"eval": {}}, "card lacks"),
])
def test_bad_cards_are_refused(tmp_path: Path, changes, message) -> None:
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        read_card(_card(tmp_path, **changes))


def test_damaged_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    card = read_card(_card(tmp_path))
    with pytest.raises(ValueError, match="is not a safetensors policy file"):
        load_sb3_policy(card.path)


def test_provider_modes_and_threshold(tmp_path: Path) -> None:
    _card(tmp_path)
    fallback_calls = []

    def fallback(call):
        fallback_calls.append(call)
        return "scripted"

    call = SkillCall("reach", ("mug",))
    assert LearnedSkillProvider(fallback, "scripted", tmp_path).policy_for(call) == "scripted"
    auto = LearnedSkillProvider(fallback, "auto", tmp_path, threshold=0.95)
    assert "90% < threshold 95%" in auto.explain(call) and auto.policy_for(call) == "scripted"
    trusting = LearnedSkillProvider(fallback, "auto", tmp_path, threshold=0.8)
    assert trusting.choice(call)[0] is not None
    assert "no learned policy for push" in trusting.explain(SkillCall("push", ("mug", "left")))
    with pytest.raises(ValueError, match="unknown skills mode 'smart'"):
        LearnedSkillProvider(fallback, "smart")


def test_auto_mode_hands_a_call_the_learned_policy_failed_to_the_expert(tmp_path: Path) -> None:
    _card(tmp_path)
    call, other = SkillCall("reach", ("mug",)), SkillCall("reach", ("red_block",))
    auto = LearnedSkillProvider(lambda c: "scripted", "auto", tmp_path, threshold=0.8)
    auto.record_outcome(call, "scripted", False)  # the expert's failures say nothing about the learned policy
    assert auto.choice(call)[0] is not None
    auto.record_outcome(call, "ppo:reach", False)
    assert auto.choice(call)[0] is None and "failed 'move the gripper to the mug'" in auto.explain(call)
    assert auto.choice(other)[0] is not None  # only that call
    auto.new_episode()
    assert auto.choice(call)[0] is not None
    learned = LearnedSkillProvider(lambda c: "scripted", "learned", tmp_path)
    learned.record_outcome(call, "ppo:reach", False)
    assert learned.choice(call)[0] is not None  # --skills learned always uses the learned policy


def test_standardized_extractor_normalises_and_saves_its_statistics(tmp_path: Path) -> None:
    space = spaces.Dict({"objects": spaces.Box(-np.inf, np.inf, (3,), np.float32),
                         "goal": spaces.Box(-1, 1, (4,), np.float32)})
    extractor = StandardizedExtractor(space, token_dim=8)
    rng = np.random.default_rng(0)
    goal = 0.6 + 0.01 * rng.standard_normal((50, 4))
    extractor.set_statistics({"goal": goal, "objects": rng.normal(5.0, 2.0, (200, 3))})
    mean, std = extractor.statistics("goal")
    np.testing.assert_allclose(mean.numpy(), goal.mean(0), atol=1e-6)
    np.testing.assert_allclose(std.numpy(), goal.std(0), rtol=1e-5)
    with pytest.raises(KeyError, match="no standardised input named"):
        extractor.set_statistics({"proprio": goal})
    torch.save(extractor.state_dict(), tmp_path / "x.pt")
    fresh = StandardizedExtractor(space, token_dim=8)
    fresh.load_state_dict(torch.load(tmp_path / "x.pt"))
    batch = {"objects": torch.ones(2, 3), "goal": torch.as_tensor(goal[:2], dtype=torch.float32)}
    assert torch.equal(fresh(batch), extractor(batch))


def test_shipped_policies_load_with_their_commands_and_evaluations() -> None:
    """Every policy in agent/skill_policies loads as the agent loads it and documents how it was made."""
    cards = find_cards(DEFAULT_DIR)
    assert len(cards) == len(list(DEFAULT_DIR.glob("*.json"))) >= 1, "every shipped card must be found"
    for task, card in cards.items():
        assert card.path.stat().st_size < 5_500_000, f"{card.path.name} is too big to ship (issue 14: ~5 MB)"
        assert card.meta["train_command"].startswith(("embodia train", "embodia dagger"))
        assert card.meta["eval_command"].startswith(("embodia eval", "embodia dagger"))
        assert card.meta["eval"]["episodes"] >= 100 and 0.0 <= card.success_rate <= 1.0
        policy = load_sb3_policy(card.path)
        assert set(policy.observation_space.spaces) == {"proprio", "objects", "goal"}, task
        assert policy.observation_space["goal"].shape == (card.meta["goal_dim"],)


def test_grounding_teaches_attention_which_object_a_sentence_names(tmp_path: Path) -> None:
    from experiments.training.config import TrainConfig
    from experiments.training.env import build_vec_env, input_statistics
    from experiments.training.grounding import SLOTS, grounding_labels, pretrain_grounding
    from experiments.training.language import EmbeddingTable, all_texts
    from experiments.training.session import RunPaths
    from experiments.training.train import new_model
    from perception.text import HashingTextEncoder

    config = TrainConfig(task="place_in", encoder="hashing", n_envs=1, n_steps=32, batch_size=32, token_dim=16,
                         net_arch=(16,), statistics_steps=30, object_heads=2)
    table = EmbeddingTable.build(HashingTextEncoder(), all_texts("place_in"), "hashing")
    goals, labels = grounding_labels("place_in", table)
    assert goals.shape == (len(labels), 384)
    assert set(labels[:, 0]) == {SLOTS.index(x) for x in ("red_block", "green_block", "blue_block",
                                                           "yellow_block", "mug")}
    assert set(labels[:, 1]) == {SLOTS.index("bowl"), -1}  # the drawer is not an object row
    venv = build_vec_env(config, table)
    try:
        statistics = input_statistics(config, table)
        model = new_model(config, venv, RunPaths(tmp_path), table, statistics)
        report = pretrain_grounding(model, config, table, statistics["objects"], steps=150)
    finally:
        venv.close()
    assert report["accuracy_before"][0] < 0.5
    assert report["accuracy_after"][0] > 0.95 and report["accuracy_after"][1] > 0.95


def _tiny_grounding_model(task: str) -> tuple[Any, Any, Any, np.ndarray]:
    """(model, config, table, objects): a tiny fresh policy with object attention and a few env steps' objects."""
    from experiments.training.config import TrainConfig
    from experiments.training.env import build_vec_env, input_statistics
    from experiments.training.language import EmbeddingTable, all_texts
    from experiments.training.train import new_model
    from perception.text import HashingTextEncoder

    config = TrainConfig(task=task, encoder="hashing", n_envs=1, n_steps=32, batch_size=32, token_dim=16,
                         net_arch=(16,), statistics_steps=30, object_heads=2)
    table = EmbeddingTable.build(HashingTextEncoder(), all_texts(task), "hashing")
    venv = build_vec_env(config, table)
    try:
        statistics = input_statistics(config, table)
        model = new_model(config, venv, None, table, statistics)
    finally:
        venv.close()
    return model, config, table, statistics["objects"]


def test_grounding_skips_a_task_whose_sentences_name_no_object() -> None:
    """"open the drawer" has no object row to attend to: grounding must leave the weights finite, not NaN."""
    from experiments.training.grounding import pretrain_grounding

    model, config, table, objects = _tiny_grounding_model("open")
    report = pretrain_grounding(model, config, table, objects, steps=20)
    assert report["steps"] == 0 and "names an object row" in report["skipped"]
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())


@pytest.mark.parametrize("retry", ["repeat", "sample"])
def test_a_learned_retry_samples_seeded_actions_only_when_asked(retry: str) -> None:
    """`--learned-retry sample`: a call the learned policy failed is retried with seeded Gaussian actions."""
    from perception.text import default_text_encoder

    encoder = default_text_encoder("hashing")
    call = SkillCall("open", ("drawer",))
    provider = LearnedSkillProvider(lambda c: "scripted", "learned", DEFAULT_DIR, encoder=encoder, retry=retry)

    def actions() -> np.ndarray:
        policy = provider.policy_for(call)
        policy.reset(call)
        space = policy._policy.observation_space
        obs = {key: space[key].sample() * 0 for key in space.spaces if key != "goal"}
        return np.stack([policy.act(obs, {}) for _ in range(3)])

    first = actions()
    np.testing.assert_array_equal(first[0], first[1])  # mean actions: the same observation, the same action
    provider.record_outcome(call, "ppo:open", False)
    retried = actions()
    provider.new_episode()
    provider.record_outcome(call, "ppo:open", False)
    again = actions()
    np.testing.assert_array_equal(retried, again)  # seeded by the call and the attempt: reproducible
    if retry == "repeat":
        np.testing.assert_array_equal(retried, first)
    else:
        assert not np.allclose(retried[0], retried[1]) and np.abs(retried - first).max() > 0.05
        assert retried.min() >= -1.0 and retried.max() <= 1.0
    provider.new_episode()
    np.testing.assert_array_equal(actions(), first)  # a new episode forgets the failure


def test_an_unknown_learned_retry_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown learned retry 'random'; expected one of: repeat, sample"):
        LearnedSkillProvider(lambda c: "scripted", "learned", retry="random")


def test_paired_grounding_labels_come_from_the_episode_arguments() -> None:
    """Sentences alone can be ambiguous (a bag-of-words embedding makes "red on blue" and "blue on red" equal):
    the recorded pairs take their labels from the episode's arguments, per head."""
    from experiments.training.grounding import SLOTS, argument_labels

    labels = argument_labels([("red_block", "blue_block"), ("blue_block", "red_block"), ("mug", "drawer"), ("mug",)])
    assert labels.tolist() == [[0, 2], [2, 0], [SLOTS.index("mug"), -1], [SLOTS.index("mug"), -1]]


def test_paired_grounding_refuses_misaligned_goals() -> None:
    from experiments.common.errors import InputError
    from experiments.training.grounding import argument_labels, pretrain_grounding

    model, config, table, objects = _tiny_grounding_model("place_on")
    recorded = table.encode(["put the red block on the blue block"] * len(objects))
    labels = argument_labels([("red_block", "blue_block")] * len(objects))
    report = pretrain_grounding(model, config, table, objects, steps=30, scene_goals=recorded, scene_labels=labels)
    with pytest.raises(InputError, match="one goal and one label row per scene"):
        pretrain_grounding(model, config, table, objects, steps=1, scene_goals=recorded[:-1], scene_labels=labels[:-1])
    with pytest.raises(InputError, match="both scene_goals and scene_labels"):
        pretrain_grounding(model, config, table, objects, steps=1, scene_goals=recorded)
    assert len(report["paired_accuracy_after"]) == 2
    assert report["paired_accuracy_after"][1] > report["paired_accuracy_before"][1] or \
        report["paired_accuracy_before"][1] == 1.0


def test_auto_trusts_the_lower_end_of_a_cards_interval_not_its_point_rate(tmp_path: Path) -> None:
    """82/100 [0.73, 0.88] is not evidence of 80%: `auto` runs the expert (that student cost the default 0.16)."""
    call = SkillCall("reach", ("mug",))
    _card(tmp_path, eval={"rate": 0.82, "episodes": 100, "ci95": [0.7333, 0.883]})
    unsure = LearnedSkillProvider(lambda c: "scripted", "auto", tmp_path, threshold=0.8)
    assert unsure.choice(call)[0] is None and "95% interval from 73% < threshold 80%" in unsure.explain(call)
    _card(tmp_path, eval={"rate": 0.94, "episodes": 100, "ci95": [0.8752, 0.9722]})
    sure = LearnedSkillProvider(lambda c: "scripted", "auto", tmp_path, threshold=0.8)
    assert sure.choice(call)[0] is not None and "from 88%" in sure.explain(call)
