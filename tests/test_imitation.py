"""Imitation tooling (experiments/imitation): Minari round trip, DAgger relabelling, CLI refusals, device choice."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.experts import StatePlaceExpert, make_expert
from envs.state import SceneState
from envs.tasks import TaskSpec
from experiments.imitation.dataset import load_dataset, transitions, write_dataset
from experiments.imitation.rollout import SkillEnv, labelling_expert, rollout
from experiments.training.language import EmbeddingTable, all_texts
from perception.text import default_text_encoder


@pytest.fixture(scope="module")
def pick_env():
    table = EmbeddingTable.build(default_text_encoder("hashing"), all_texts("pick"), source="hashing")
    env = SkillEnv("pick", "state", "chain", table)
    yield env
    env.close()


@pytest.mark.parametrize("labeller", ["plain", "recovering", "careful", "nearest", "patient", "state", "lowrelease",
                                      "tightrelease"])
def test_relabelling_labels_the_students_states_with_the_experts_actions(pick_env: SkillEnv, labeller: str) -> None:
    """beta = 0: a (bad) constant student drives; every label is what the expert says in the state it saw."""
    student_action = np.array([0.4, -0.4, 0.6, 1.0], np.float32)
    episode = rollout(pick_env, seed=4, student=lambda obs: student_action, beta=0.0, labeller=labeller)
    assert len(episode) >= 5 and len(episode.observations["proprio"]) == len(episode) + 1
    assert all(np.array_equal(a, student_action) for a in episode.executed)
    # Replay: the same seed and the same executed actions visit the same states; a fresh expert fed them
    # must give exactly the recorded labels.
    _, info = pick_env.reset(4)
    expert = labelling_expert(pick_env.env.task, labeller)
    for label, executed in zip(episode.labels, episode.executed, strict=True):
        np.testing.assert_array_equal(expert.act(info["scene_state"]), label)
        _, _, _, _, info = pick_env.step(executed)
    assert not all(np.array_equal(label, student_action) for label in episode.labels)


def test_beta_one_is_the_expert_alone(pick_env: SkillEnv) -> None:
    episode = rollout(pick_env, seed=2, student=lambda obs: np.zeros(4, np.float32), beta=1.0)
    assert all(np.array_equal(a, b) for a, b in zip(episode.labels, episode.executed, strict=True))
    with pytest.raises(ValueError, match="beta must be in"):
        rollout(pick_env, seed=2, beta=1.5)
    with pytest.raises(ValueError, match="unknown labeller 'oracle'; expected one of: plain, recovering, careful"):
        rollout(pick_env, seed=2, labeller="oracle")


@pytest.fixture(scope="module")
def place_env():
    table = EmbeddingTable.build(default_text_encoder("hashing"), all_texts("place_on"), source="hashing")
    env = SkillEnv("place_on", "state", "chain", table, skill_text_fraction=1.0)
    yield env
    env.close()


def _hovering_student(env: SkillEnv, seen: list) -> tuple:
    """A student that carries the object over its target as the expert would, but never lowers it below 18 cm."""
    own = make_expert(env.env.task)

    def act(obs: dict) -> np.ndarray:
        state = env.env.scene_state()
        seen.append(state)
        action = own.act(state).copy()
        if state.ee_position[2] < 0.18:
            action[2] = max(action[2], 0.0)
        action[3] = -1.0
        return action

    return act


@pytest.mark.parametrize("labeller", ["recovering", "careful", "nearest", "patient", "state", "lowrelease",
                                      "tightrelease"])
def test_a_patient_labeller_never_says_let_go_over_a_hovering_student(place_env: SkillEnv, labeller: str) -> None:
    """The plain phases run out of steps and label "release" 18 cm above the target; patient ones keep "lower"."""
    _, info = place_env.reset(7)
    name = info["task_args"][0]
    assert info["scene_state"].held == name  # a chain-start place begins with the object in hand
    seen: list = []
    student = _hovering_student(place_env, seen)
    episode = rollout(place_env, seed=7, student=lambda obs: student(obs), beta=0.0, labeller=labeller)
    assert not episode.success and len(episode) == len(seen)
    held_high = [(state, label) for state, label in zip(seen, episode.labels, strict=True)
                 if state.held == name and state.position(name)[2] > 0.15]
    assert len(held_high) > 60
    opened = [label for _, label in held_high if label[3] > 0]
    if labeller in ("careful", "patient", "state", "lowrelease", "tightrelease"):
        assert opened == []
        assert all(label[2] < 0 for _, label in held_high[-20:])  # still saying "go down"
    else:
        assert len(opened) >= 5


def test_a_minari_dataset_round_trips_with_its_observation_space(tmp_path: Path, pick_env: SkillEnv) -> None:
    episodes = [rollout(pick_env, seed=s) for s in (0, 1)]
    folder = write_dataset(tmp_path, "pick-test", episodes, pick_env.observation_space, pick_env.action_space,
                           description="test", algorithm="scripted-expert")
    assert folder == tmp_path.resolve() / "embodia" / "pick-test-v0"
    dataset = load_dataset(tmp_path, "pick-test")
    assert dataset.observation_space == pick_env.observation_space
    assert dataset.action_space == pick_env.action_space
    assert dataset.total_episodes == 2 and dataset.total_steps == sum(len(e) for e in episodes)
    for stored, original in zip(dataset.iterate_episodes(), episodes, strict=True):
        for key, rows in original.observations.items():
            np.testing.assert_array_equal(stored.observations[key], np.stack(rows))
        np.testing.assert_array_equal(stored.actions, np.stack(original.labels))
        np.testing.assert_array_equal(stored.infos["executed_action"][1:], np.stack(original.executed))
    observations, labels, returns, n, _ = transitions([dataset], gamma=0.95)
    assert n == 2 and len(labels) == len(returns) == len(observations["goal"]) == dataset.total_steps
    with pytest.raises(ValueError, match="already exists"):
        write_dataset(tmp_path, "pick-test", episodes, pick_env.observation_space, pick_env.action_space, "t", "a")
    with pytest.raises(FileNotFoundError, match="found: pick-test-v0"):
        load_dataset(tmp_path, "other")


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--skill", "juggle", "unknown skill 'juggle'"),
    ("--start", "middle", "unknown start mode 'middle'"),
    ("--obs-mode", "rgbd", "unknown observation set 'rgbd'"),
    ("--prefix", "teacher", "unknown prefix runner 'teacher'"),
])
def test_collect_refuses_bad_arguments_with_exit_2(tmp_path: Path, capsys, flag: str, value: str,
                                                   message: str) -> None:
    from experiments.cli import main

    argv = {"--skill": "pick", "--start": "chain", "--obs-mode": "state", flag: value}
    code = main(["collect", *[x for kv in argv.items() for x in kv], "--episodes", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_collect_writes_a_dataset_minari_can_load(tmp_path: Path) -> None:
    import os

    import minari

    from experiments.cli import main

    assert main(["collect", "--skill", "open", "--episodes", "2", "--start", "chain", "--encoder", "hashing",
                 "--out", str(tmp_path)]) == 0
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(tmp_path)
    try:
        dataset = minari.load_dataset("embodia/open-state-chain-s0-v0")
    finally:
        os.environ.pop("MINARI_DATASETS_PATH") if before is None else os.environ.update(MINARI_DATASETS_PATH=before)
    assert dataset.total_episodes == 2 and set(dataset.observation_space.spaces) == {"proprio", "objects", "goal"}


def test_device_auto_falls_back_to_cpu_without_cuda(monkeypatch) -> None:
    import torch

    from experiments.training.config import TrainConfig, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="device must be auto, cpu or cuda"):
        TrainConfig(device="tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"


@pytest.mark.parametrize("refit, students", [("continue", 1), ("fresh", 2)])
def test_fresh_refit_fits_a_new_student_every_round(tmp_path: Path, monkeypatch, refit: str, students: int) -> None:
    """`refit: fresh` is Ross et al.'s DAgger: each round's student is a new network fitted on all data so far."""
    from experiments.imitation import dagger

    built = []
    original = dagger.new_student

    def counting(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(dagger, "new_student", counting)
    cfg = dagger.DaggerConfig(task="open", rounds=1, expert_episodes=2, episodes_per_round=1, bc_epochs=1,
                              encoder="hashing", device="cpu", refit=refit)
    policy, summary = dagger.run_dagger(cfg, tmp_path)
    assert len(built) == students and policy is built[-1][0]
    assert summary["rounds"][1]["bc"]["samples"] == summary["samples"]  # the last fit saw every round's data


def test_dagger_refuses_an_unknown_refit() -> None:
    from experiments.common.errors import InputError
    from experiments.imitation.dagger import DaggerConfig

    with pytest.raises(InputError, match="unknown refit 'restart'; expected one of: continue, fresh"):
        DaggerConfig(task="open", refit="restart")


def test_dagger_set_sizes_a_fresh_students_network(tmp_path: Path) -> None:
    """`--set net_arch=...` reaches the student that DAgger builds, not just the config object."""
    from experiments.imitation import dagger

    cfg = dagger.DaggerConfig(task="open", rounds=0, expert_episodes=1, bc_epochs=1, encoder="hashing",
                              device="cpu", training_overrides={"net_arch": [48, 40], "token_dim": 16})
    assert cfg.train_config().net_arch == (48, 40) and cfg.train_config().token_dim == 16
    policy, _ = dagger.run_dagger(cfg, tmp_path)
    widths = [layer.out_features for layer in policy.mlp_extractor.policy_net if hasattr(layer, "out_features")]
    assert widths == [48, 40]


def test_dagger_set_action_bins_gives_a_binned_student_that_acts_and_round_trips(tmp_path: Path) -> None:
    """`--set action_bins=N` reaches the student: a categorical head per action dimension, cloned and saved safely."""
    from agent.policy_heads import BinnedActorCriticPolicy
    from agent.policy_io import load_policy, save_policy
    from experiments.imitation import dagger

    cfg = dagger.DaggerConfig(task="open", rounds=0, expert_episodes=1, bc_epochs=2, encoder="hashing",
                              device="cpu", training_overrides={"net_arch": [32], "token_dim": 16,
                                                                "action_bins": 11})
    policy, summary = dagger.run_dagger(cfg, tmp_path)
    assert isinstance(policy, BinnedActorCriticPolicy) and policy.action_net.out_features == 4 * 11
    assert np.isfinite(summary["rounds"][0]["bc"]["final_nll"])
    again = load_policy(save_policy(policy, tmp_path / "binned.safetensors"))
    obs = {k: np.zeros(space.shape, space.dtype) for k, space in policy.observation_space.spaces.items()}
    action = again.predict(obs, deterministic=True)[0]
    assert action.shape == (4,) and np.all(np.abs(action) <= 1.0)
    np.testing.assert_allclose(action, policy.predict(obs, deterministic=True)[0], atol=1e-6)


@pytest.mark.parametrize("overrides, init, message", [
    ({"seed": 3}, None, "--set seed: set by embodia dagger's own flags"),
    ({"net_arch": [64]}, "agent/skill_policies/open.json", "--set net_arch shapes a new network, but --init"),
    ({"net_arch": "wide"}, None, "net_arch must be a list of positive integers"),
    ({"no_such_key": 1}, None, "no_such_key"),
])
def test_dagger_refuses_bad_training_overrides(overrides: dict, init: str | None, message: str) -> None:
    from experiments.common.errors import InputError
    from experiments.imitation.dagger import DaggerConfig

    with pytest.raises(InputError, match=message):
        DaggerConfig(task="open", init=init, training_overrides=overrides).train_config()


def test_dagger_cli_refuses_a_malformed_set_with_exit_2(tmp_path: Path, capsys) -> None:
    from experiments.cli import main

    code = main(["dagger", "--skill", "open", "--set", "net_arch", "--encoder", "hashing", "--out",
                 str(tmp_path / "run")])
    assert code == 2 and "--set expects KEY=VALUE, got 'net_arch'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_dagger_cli_trains_evaluates_and_ships_a_loadable_policy(tmp_path: Path) -> None:
    import json

    from agent.policy import find_cards, load_sb3_policy
    from experiments.cli import main

    out, ship = tmp_path / "run", tmp_path / "policies"
    assert main(["dagger", "--skill", "open", "--rounds", "1", "--expert-episodes", "3", "--episodes-per-round", "2",
                 "--bc-epochs", "2", "--eval-episodes", "2", "--reset-eval-episodes", "2", "--encoder", "hashing",
                 "--device", "auto", "--out", str(out), "--ship", "--policy-dir", str(ship)]) == 0
    summary = json.loads((out / "dagger.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [0, 1] and summary["rounds"][1]["beta"] == 0.5
    assert len(list((out / "data" / "embodia").glob("open-*-v0"))) == 2
    card = find_cards(ship)["open"]
    assert card.meta["observation_keys"] == ["goal", "objects", "proprio"] and card.meta["eval"]["episodes"] == 2
    assert set(load_sb3_policy(card.path).observation_space.spaces) == {"goal", "objects", "proprio"}


def test_an_rgbd_touch_student_sees_no_privileged_key() -> None:
    """The visuomotor observation set: cameras, touch, proprioception and the goal; never the object rows."""
    table = EmbeddingTable.build(default_text_encoder("hashing"), all_texts("open"), source="hashing")
    env = SkillEnv("open", "rgbd_touch", "chain", table)
    try:
        keys = set(env.observation_space.spaces)
        assert keys == {"proprio", "rgb_front", "depth_front", "rgb_wrist", "depth_wrist", "touch", "goal"}
        obs, _ = env.reset(seed=0)
        assert set(obs) == keys
    finally:
        env.close()


def test_a_fresh_students_grounding_uses_the_recorded_pairs(tmp_path: Path) -> None:
    """Round 0's scenes reach grounding with their own sentences and arguments (one label row per step)."""
    from experiments.imitation import dagger

    cfg = dagger.DaggerConfig(task="pick", rounds=0, expert_episodes=2, bc_epochs=1, encoder="hashing",
                              device="cpu", training_overrides={"grounding_steps": 5})
    _, summary = dagger.run_dagger(cfg, tmp_path)
    grounding = summary["rounds"][0]["grounding"]
    assert grounding["steps"] == 5 and len(grounding["paired_accuracy_after"]) == 2
    assert grounding["paired_accuracy_after"][0] >= 0.0  # head 0 is labelled: every pick names its object


def test_learned_prefix_starts_are_reproducible_and_run_the_shipped_skills() -> None:
    from envs.household import HouseholdEnv
    from experiments.imitation.learned_prefix import LearnedPrefixRunner

    runner = LearnedPrefixRunner()
    one = HouseholdEnv(task="place_in", start="chain", prefix_runner=runner)
    two = HouseholdEnv(task="place_in", start="chain", prefix_runner=LearnedPrefixRunner())
    try:
        for seed in (4, 9):
            obs_a, info_a = one.reset(seed=seed)
            obs_b, info_b = two.reset(seed=seed)
            assert info_a["chain_start"] == info_b["chain_start"] and info_a["scene_state"] == info_b["scene_state"]
            assert all(np.array_equal(obs_a[k], obs_b[k]) for k in obs_a)
            assert info_a["scene_state"].held == one.task.args[0]  # the place starts holding its object
    finally:
        one.close()
        two.close()
    assert runner.calls.get("ppo:pick", [0, 0])[1] >= 2  # each start's setup pick ran the learned pick


def test_a_learned_prefix_needs_chain_starts() -> None:
    from experiments.common.errors import InputError
    from experiments.imitation.dagger import DaggerConfig

    table = EmbeddingTable.build(default_text_encoder("hashing"), all_texts("open"), source="hashing")
    with pytest.raises(InputError, match="unknown prefix runner 'teacher'"):
        SkillEnv("open", "state", "chain", table, prefix="teacher")
    with pytest.raises(InputError, match="needs start 'chain', got 'reset'"):
        SkillEnv("open", "state", "reset", table, prefix="learned")
    with pytest.raises(InputError, match="needs start 'chain', got 'reset'"):
        DaggerConfig(task="open", start="reset", prefix="mixed")


@pytest.mark.parametrize(("argv", "message"), [
    (["--prefix", "teacher"], "unknown prefix runner 'teacher'"),
    (["--prefix", "learned", "--start", "reset"], "a learned prefix builds chain starts; it needs start 'chain'"),
    (["--start", "middle"], "unknown start mode 'middle'"),
    (["--crowd"], "--crowd crowds the target of a place's chain start; it needs --start chain and a place card"),
])
def test_eval_skill_refuses_bad_starts_with_exit_2(capsys, argv: list[str], message: str) -> None:
    from experiments.cli import main

    code = main(["eval-skill", "--card", "agent/skill_policies/open.json", "--episodes", "1", *argv])
    assert code == 2 and message in capsys.readouterr().err


def test_the_nearest_free_table_spot_is_clear_and_under_an_object_that_already_stands_free() -> None:
    """The patient labeller's "on the table" goal: clear of every other object, and local (no detour when free)."""
    from envs.household import HouseholdEnv
    from envs.scene import LAYOUT_X, LAYOUT_Y, SPECS
    from envs.tasks import nearest_free_table_spot

    env = HouseholdEnv(task="place_on", start="reset")
    checked = 0
    try:
        for seed in range(6):
            env.reset(seed=seed)
            state = env.scene_state()
            for name in ("red_block", "green_block", "blue_block", "yellow_block", "mug"):
                spot = nearest_free_table_spot(state, name)
                for other in state.objects:
                    if other != name:
                        room = SPECS[name].footprint + SPECS[other].footprint + 0.012
                        assert np.linalg.norm(spot[:2] - state.position(other)[:2]) >= room - 1e-9
                # the reset layout spaces objects this far apart already: where the 1 cm grid of candidate
                # points reaches (4 cm inside the layout), the spot is (about) where the object stands
                x, y = state.position(name)[:2]
                inside = LAYOUT_X[0] + 0.04 <= x <= LAYOUT_X[1] - 0.04 and LAYOUT_Y[0] + 0.04 <= y <= LAYOUT_Y[1] - 0.04
                checked += inside
                if inside:
                    assert np.linalg.norm(spot[:2] - state.position(name)[:2]) < 0.012
                assert spot[2] == pytest.approx(SPECS[name].origin_height)
    finally:
        env.close()
    assert checked >= 10


def test_the_state_place_labeller_labels_a_state_the_same_whatever_came_before(place_env: SkillEnv) -> None:
    """Put on the table: a fresh state labeller gives, in every state of a student's episode, the recorded label."""
    from envs.experts import StatePlaceExpert

    wobbly = np.random.default_rng(3)

    def student(obs: dict) -> np.ndarray:  # wanders with the object in a closed hand
        return np.array([*wobbly.uniform(-0.3, 0.3, 3), -1.0], np.float32)

    episode = rollout(place_env, seed=12, student=student, beta=0.0,
                      args=("red_block", "table"), labeller="state")
    _, info = place_env.reset(12, ("red_block", "table"))
    held_steps = 0
    for label, executed in zip(episode.labels, episode.executed, strict=True):
        state = info["scene_state"]
        fresh = StatePlaceExpert(place_env.env.task).act(state)
        if state.held == "red_block":  # (re-grasping runs the pick's phases, which do keep a phase)
            held_steps += 1
            np.testing.assert_array_equal(fresh, label)
        _, _, _, _, info = place_env.step(executed)
    assert held_steps >= 30


def test_the_nearest_labeller_puts_an_object_down_at_the_nearest_free_spot(place_env: SkillEnv) -> None:
    """Put on the table, object in hand: acting alone, the "nearest" labeller sets it down at the free spot nearest
    to where it started and the recovering one at the farthest free spot; both succeed."""
    from envs.tasks import free_table_spot, nearest_free_table_spot

    _, info = place_env.reset(12, ("red_block", "table"))
    state = info["scene_state"]
    assert state.held == "red_block"
    near, far = nearest_free_table_spot(state, "red_block"), free_table_spot(state, "red_block")
    assert np.linalg.norm(near[:2] - far[:2]) > 0.05  # the two goals are apart, so the endings can tell them
    for labeller, goal in (("nearest", near), ("recovering", far)):
        episode = rollout(place_env, seed=12, args=("red_block", "table"), labeller=labeller)
        end = place_env.env.scene_state().position("red_block")
        assert episode.success, labeller
        assert np.linalg.norm(end[:2] - goal[:2]) < 0.03, (labeller, end, goal)


def test_the_careful_labeller_moves_on_from_a_near_miss_where_the_patient_one_waits(place_env: SkillEnv) -> None:
    """A student carrying the block 4 cm beside the point over its target: the careful labeller's "carry" phase
    still ends on the clock, so it says "go down" (and never "let go"); the patient one keeps saying "centre"."""
    from envs.experts import CARRY_HEIGHT
    from envs.robots import EE_STEP

    def student(obs: dict) -> np.ndarray:
        state = place_env.env.scene_state()
        target = state.position("blue_block") + np.array([0.04, 0.0, 0.0])
        target[2] = CARRY_HEIGHT
        return np.array([*np.clip((target - state.ee_position) / EE_STEP, -1, 1), -1.0], np.float32)

    late = {}
    for labeller in ("careful", "patient"):
        episode = rollout(place_env, seed=12, student=student, beta=0.0, args=("red_block", "blue_block"),
                          labeller=labeller)
        assert len(episode) > 90 and not episode.success
        assert all(label[3] < 0 for label in episode.labels)  # neither lets go
        late[labeller] = np.array(episode.labels[-20:])
    assert (late["careful"][:, 2] < -0.1).all()
    assert (np.abs(late["patient"][:, 2]) < 0.1).all()


@pytest.mark.parametrize("args", [("red_block", "blue_block"), ("mug", "plate"), ("green_block", "table")])
@pytest.mark.parametrize("labeller", ["lowrelease", "tightrelease"])
def test_the_low_release_labeller_alone_still_places(place_env: SkillEnv, args: tuple[str, str], labeller: str
                                                     ) -> None:
    """Acting alone, the low-release labellers let go at their goal, as the phase expert they wrap does."""
    episode = rollout(place_env, seed=12, args=args, labeller=labeller)
    assert episode.success, args
    assert any(label[3] > 0 for label in episode.labels)


def test_eval_skill_can_rewrite_a_cards_rate_and_keeps_the_one_it_replaces(tmp_path: Path) -> None:
    """`eval-skill --update-card`: the new measurement replaces the card's entry; the old one is kept."""
    import json
    import shutil

    from agent.policy import read_card
    from experiments.commands.eval_skill import card_key, update_card

    for name in ("place_on.json", "place_on.safetensors"):
        shutil.copy(Path("agent/skill_policies") / name, tmp_path / name)
    card_path = tmp_path / "place_on.json"
    before = json.loads(card_path.read_text())
    old, history = before["eval"], before.get("superseded", [])
    result = {"start": "chain", "prefix": "scripted", "episodes": 4, "successes": 1, "rate": 0.25,
              "ci95": [0.05, 0.7], "by_argument": {}}
    assert (card_key("chain", "scripted"), card_key("chain", "learned"), card_key("reset", "scripted")) == (
        "eval", "eval_learned_prefix", "eval_reset")
    assert (card_key("chain", "scripted", crowd=True), card_key("chain", "learned", crowd=True)) == (
        "eval_crowded", "eval_crowded_learned_prefix")  # a stress test never replaces the card's rate
    update_card(card_path, "eval", result, "embodia eval-skill ...")
    meta = json.loads(card_path.read_text())
    assert meta["eval"]["rate"] == 0.25 and meta["eval"]["source"] == "embodia eval-skill ..."
    assert meta["superseded"] == [*history, {"key": "eval", "value": old}]
    assert read_card(card_path).success_rate == 0.25  # what `--skills auto` trusts now


def test_the_tight_release_labeller_says_go_down_where_the_low_release_one_lets_go(place_env: SkillEnv) -> None:
    """Held 3 cm over its drop goal on a block, well centred: a drop that height bounces off at rest about a third
    of the time, so `tightrelease` labels "go down, closed" where `lowrelease` (6 cm ceiling) labels "let go"."""
    from envs.state import BLOCK_HALF

    own = make_expert(TaskSpec("place_on", ("red_block", "blue_block")))
    seen: list = []

    def student(obs: dict) -> np.ndarray:  # the expert's path, but the block stays 3 cm over the drop goal
        state = place_env.env.scene_state()
        seen.append(state)
        action = own.act(state).copy()
        floor = state.position("blue_block")[2] + 2 * BLOCK_HALF + 0.005 + 0.03
        if state.position("red_block")[2] < floor:
            action[2] = max(action[2], 0.3)
        action[3] = -1.0
        return action

    opened = {}
    for labeller in ("lowrelease", "tightrelease"):
        own.reset()
        seen.clear()
        episode = rollout(place_env, seed=12, student=student, beta=0.0, args=("red_block", "blue_block"),
                          labeller=labeller)
        assert not episode.success
        low = [label for state, label in zip(seen, episode.labels, strict=True)
               if state.held == "red_block" and state.position("red_block")[2] < 0.12]
        assert len(low) > 20
        opened[labeller] = [label for label in low if label[3] > 0]
        if labeller == "tightrelease":
            assert all(label[2] < 0 for label in low[-10:])
    assert len(opened["lowrelease"]) >= 5 and opened["tightrelease"] == []


def _kitchen(positions: dict[str, tuple[float, float, float]]) -> SceneState:
    """A still scene with the objects at `positions` (the mug in the closed hand)."""
    names = tuple(positions)
    n = len(names)
    return SceneState(names=names, positions=np.array([positions[k] for k in names], float),
                      orientations=np.tile([0.0, 0.0, 0.0, 1.0], (n, 1)), velocities=np.zeros((n, 3)),
                      drawer_opening=0.0, drawer_position=np.array([0.7, 0.2, 0.1]),
                      ee_position=np.array([0.5, -0.1, 0.2]), ee_yaw=0.0, gripper_width=0.05,
                      finger_contacts=(frozenset({"mug"}), frozenset({"mug"})))


def test_the_local_labeller_drops_on_an_empty_plate_at_its_centre_whatever_stands_elsewhere() -> None:
    from envs.experts import StatePlaceExpert

    spec = TaskSpec("place_on", ("mug", "plate"))
    scene = {"red_block": (0.35, 0.05, 0.022), "green_block": (0.62, 0.0, 0.022), "mug": (0.5, -0.1, 0.17),
             "plate": (0.5, -0.1, 0.0)}
    kitchen_wide, local = [], []
    for bowl in ((0.35, -0.3, 0.0), (0.62, -0.3, 0.0), (0.45, 0.05, 0.0)):
        state = _kitchen({**scene, "bowl": bowl})
        kitchen_wide.append(StatePlaceExpert(spec).goal(state))
        local.append(StatePlaceExpert(spec, local_spots=True).goal(state))
    for goal in local:
        np.testing.assert_allclose(goal[:2], [0.5, -0.1], atol=1e-9)
    # the state labeller's spot moves with the bowl 20 cm away (what a student cannot clone)
    assert max(np.linalg.norm(g[:2] - kitchen_wide[0][:2]) for g in kitchen_wide) > 0.02
    # a block on the plate: the local spot is the ring point across from it
    crowded = _kitchen({**scene, "green_block": (0.53, -0.1, 0.03), "bowl": (0.35, -0.3, 0.0)})
    goal = StatePlaceExpert(spec, local_spots=True).goal(crowded)
    np.testing.assert_allclose(goal[:2], [0.47, -0.1], atol=1e-9)
    assert isinstance(labelling_expert(spec, "local"), StatePlaceExpert)
    # an empty drawer: its first spot, whatever stands on the table
    into_drawer = StatePlaceExpert(TaskSpec("place_in", ("mug", "drawer")), local_spots=True)
    np.testing.assert_allclose(into_drawer.goal(crowded), [0.7 - 0.075, 0.2, 0.1 + 0.09], atol=1e-9)


def test_focused_arguments_ask_the_named_targets_on_their_share_of_seeds(place_env: SkillEnv) -> None:
    from experiments.imitation.dagger import focused_arguments, relabel_round

    choose = focused_arguments("place_on", ("table", "plate"), 0.5)
    drawn = [choose(seed) for seed in range(400)]
    focused = [args for args in drawn if args is not None]
    assert 150 < len(focused) < 250  # about half
    assert {args[-1] for args in focused} == {"table", "plate"}
    assert drawn == [choose(seed) for seed in range(400)]  # the seed decides
    assert all(focused_arguments("place_on", ("table",), 0.0)(seed) is None for seed in range(50))
    mixed = focused_arguments("place_on", ("mug:plate", "table"), 1.0)
    asked = {mixed(seed) for seed in range(200)}
    assert ("mug", "plate") in asked and all(args == ("mug", "plate") or args[-1] == "table" for args in asked)
    assert {focused_arguments("place_on", ("mug:plate",), 1.0)(seed) for seed in range(20)} == {("mug", "plate")}
    seeds = [seed for seed, args in enumerate(drawn) if args is not None][:2]
    episodes = relabel_round(place_env, seeds, None, 1.0, "local", choose)
    for seed, episode in zip(seeds, episodes, strict=True):  # the chain start was built for the focused arguments
        assert place_env.arguments[episode.argument_index] == drawn[seed]


@pytest.mark.parametrize(("targets", "fraction", "message"), [
    (("sofa",), 0.5, r"--focus-targets sofa: not a target of place_on \(nor an object:target pair of its "
                     r"arguments\); expected some of: .*plate.*table"),
    (("mug:red_block",), 0.5, r"--focus-targets mug:red_block: not a target of place_on"),
    (("table",), 0.0, "go together"),
    ((), 0.3, "go together"),
    (("table",), 1.5, r"focus fraction must be in \[0, 1\], got 1.5"),
])
def test_dagger_refuses_a_bad_focus(targets: tuple[str, ...], fraction: float, message: str) -> None:
    from experiments.common.errors import InputError
    from experiments.imitation.dagger import DaggerConfig

    with pytest.raises(InputError, match=message):
        DaggerConfig(task="place_on", focus_targets=targets, focus_fraction=fraction)


def test_dagger_cli_refuses_an_unknown_focus_target_with_exit_2(tmp_path: Path, capsys) -> None:
    from experiments.cli import main

    code = main(["dagger", "--skill", "place_on", "--focus-targets", "sofa", "--focus-fraction", "0.5",
                 "--encoder", "hashing", "--out", str(tmp_path / "run")])
    assert code == 2 and "not a target of place_on" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_extra_data_adds_an_earlier_runs_datasets_to_every_fit(tmp_path: Path, monkeypatch) -> None:
    from experiments.common.errors import InputError
    from experiments.imitation import dagger

    first = dagger.DaggerConfig(task="open", rounds=0, expert_episodes=2, bc_epochs=1, encoder="hashing")
    dagger.run_dagger(first, tmp_path / "first")
    fitted: list[int] = []
    real_fit = dagger.fit

    def counting_fit(policy: Any, root: Path, names: list[str], config: Any, extra: Any = None) -> Any:
        fitted.append(len(names) + len(extra or []))
        return real_fit(policy, root, names, config, extra)

    monkeypatch.setattr(dagger, "fit", counting_fit)
    second = dagger.DaggerConfig(task="open", rounds=0, expert_episodes=1, bc_epochs=1, encoder="hashing",
                                 extra_data=(str(tmp_path / "first"),))
    _, summary = dagger.run_dagger(second, tmp_path / "second")
    assert fitted == [2]  # its own round-0 dataset and the first run's
    assert summary["rounds"][0]["bc"]["samples"] > summary["rounds"][0]["steps"]
    with pytest.raises(InputError, match="not an `embodia dagger` output folder"):
        dagger.DaggerConfig(task="open", extra_data=(str(tmp_path / "nowhere"),))
    with pytest.raises(InputError, match="no pick state DAgger datasets"):
        dagger.run_dagger(dagger.DaggerConfig(task="pick", rounds=0, expert_episodes=1, bc_epochs=1,
                                              encoder="hashing", extra_data=(str(tmp_path / "first"),)),
                          tmp_path / "third")


def test_the_radial_table_spot_goes_straight_down_when_clear_and_straight_out_of_what_it_is_over() -> None:
    from envs.scene import SPECS
    from envs.tasks import radial_free_table_spot

    scene = {"red_block": (0.35, 0.05, 0.022), "green_block": (0.62, 0.0, 0.022), "plate": (0.55, -0.25, 0.0),
             "bowl": (0.55, -0.12, 0.0)}
    clear = _kitchen({**scene, "mug": (0.36, -0.3, 0.15)})
    np.testing.assert_allclose(radial_free_table_spot(clear, "mug")[:2], [0.36, -0.3], atol=1e-9)
    room = SPECS["mug"].footprint + SPECS["bowl"].footprint + 0.012
    spots = []
    for reach in (0.01, 0.04, 0.08):  # carried out of the bowl's room along one ray: the spot does not move
        over = _kitchen({**scene, "mug": (0.55 - reach, -0.12, 0.15)})
        spots.append(radial_free_table_spot(over, "mug")[:2])
    for spot in spots:
        np.testing.assert_allclose(spot, [0.55 - room - 0.005, -0.12], atol=1e-9)
    assert isinstance(labelling_expert(TaskSpec("place_on", ("mug", "table")), "radial"), StatePlaceExpert)


def test_crowded_starts_take_their_share_of_seeds_and_reach_the_rollouts(place_env: SkillEnv) -> None:
    from experiments.imitation.dagger import crowded_starts, focused_arguments, relabel_round

    crowd = crowded_starts(0.3)
    drawn = [crowd(seed) for seed in range(400)]
    assert 80 < sum(drawn) < 160 and drawn == [crowd(seed) for seed in range(400)]
    assert not any(crowded_starts(0.0)(seed) for seed in range(50))
    seeds = [seed for seed, crowded in enumerate(drawn) if crowded][:2]
    to_plate = focused_arguments("place_on", ("plate",), 1.0)
    episodes = relabel_round(place_env, seeds, None, 1.0, "local", to_plate, crowd)
    for episode in episodes:
        assert place_env.arguments[episode.argument_index][-1] == "plate"
    # a table target is never crowded (the env would refuse it): the round runs, the starts are plain
    to_table = focused_arguments("place_on", ("table",), 1.0)
    assert len(relabel_round(place_env, seeds[:1], None, 1.0, "local", to_table, crowd)) == 1


@pytest.mark.parametrize(("options", "message"), [
    ({"task": "place_on", "crowd_fraction": 1.5}, r"crowd fraction must be in \[0, 1\], got 1.5"),
    ({"task": "pick", "crowd_fraction": 0.5}, "needs --start chain and a place skill"),
    ({"task": "place_in", "start": "reset", "crowd_fraction": 0.5}, "needs --start chain"),
])
def test_dagger_refuses_a_bad_crowd_fraction(options: dict[str, Any], message: str) -> None:
    from experiments.common.errors import InputError
    from experiments.imitation.dagger import DaggerConfig

    with pytest.raises(InputError, match=message):
        DaggerConfig(**options)


def test_dagger_cli_refuses_crowding_a_skill_that_places_nothing_with_exit_2(tmp_path: Path, capsys) -> None:
    from experiments.cli import main

    code = main(["dagger", "--skill", "push", "--crowd-fraction", "0.5", "--encoder", "hashing",
                 "--out", str(tmp_path / "run")])
    assert code == 2 and "needs --start chain and a place skill" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_away_labeller_turns_its_drop_point_continuously_away_from_what_is_on_the_plate() -> None:
    from envs.experts import StatePlaceExpert

    spec = TaskSpec("place_on", ("mug", "plate"))
    scene = {"red_block": (0.35, 0.05, 0.022), "mug": (0.5, -0.1, 0.17), "plate": (0.5, -0.1, 0.0),
             "bowl": (0.35, -0.3, 0.0)}
    away = StatePlaceExpert(spec, local_spots=True, away_spots=True)
    np.testing.assert_allclose(away.goal(_kitchen(scene))[:2], [0.5, -0.1], atol=1e-9)  # empty: the centre
    goals, ring = [], []
    for angle in np.linspace(0.0, 0.6, 7):  # a block on the plate swings 0.6 rad around its centre
        block = (0.5 + 0.03 * np.cos(angle), -0.1 + 0.03 * np.sin(angle), 0.03)
        crowded = _kitchen({**scene, "green_block": block})
        goals.append(away.goal(crowded)[:2])
        ring.append(StatePlaceExpert(spec, local_spots=True).goal(crowded)[:2])
    for goal, angle in zip(goals, np.linspace(0.0, 0.6, 7), strict=True):  # straight across, 3 cm out
        np.testing.assert_allclose(goal, [0.5 - 0.03 * np.cos(angle), -0.1 - 0.03 * np.sin(angle)], atol=1e-9)
    steps = [float(np.linalg.norm(b - a)) for a, b in itertools.pairwise(goals)]
    ring_steps = [float(np.linalg.norm(b - a)) for a, b in itertools.pairwise(ring)]
    assert max(steps) < 0.004 and max(ring_steps) > 0.015  # the ring's best point jumps, this one turns


def test_a_crowded_evaluation_starts_every_place_with_the_target_occupied(monkeypatch) -> None:
    from envs import predicates as pred
    from experiments.imitation import evaluate

    occupied: list[bool] = []
    real_episode = evaluate._episode

    def looking(env: SkillEnv, policy: Any, obs: dict) -> bool:
        state = env.env.scene_state()
        name, target = env.env.task.args
        occupied.append(any(len(f) == 3 and f[0] in ("in", "on") and f[2] == target and f[1] != name
                            for f in pred.symbolic_facts(state)))
        return real_episode(env, policy, obs)

    monkeypatch.setattr(evaluate, "_episode", looking)
    from agent.policy import load_card_policy, read_card

    card = read_card("agent/skill_policies/place_in.json")
    table = EmbeddingTable.build(default_text_encoder("hashing"), all_texts("place_in"), source="hashing")
    result = evaluate.evaluate_policy(load_card_policy(card), "place_in", "state", "chain", table, 2, crowd=True)
    assert occupied == [True, True] and result["crowded"] is True and result["episodes"] == 2


def test_the_column_labeller_also_lets_go_under_the_drop_point_where_the_ball_labeller_lifts() -> None:
    """The mug pressed onto the plate under its drop point and swinging: `local` says centre and lift, `column`
    lets go; over the goal, high or off to the side, both keep the hand closed."""
    from dataclasses import replace

    from envs.experts import StatePlaceExpert

    spec = TaskSpec("place_on", ("mug", "plate"))
    scene = {"red_block": (0.35, 0.05, 0.022), "bowl": (0.35, -0.3, 0.0), "plate": (0.5, -0.1, 0.0)}
    goal = StatePlaceExpert(spec, local_spots=True).goal(_kitchen({**scene, "mug": (0.5, -0.1, 0.1)}))

    def labels(offset: tuple[float, float, float]) -> tuple[float, float]:
        state = _kitchen({**scene, "mug": tuple(goal + np.array(offset))})
        velocities = state.velocities.copy()
        velocities[state.names.index("mug")] = (0.05, 0.0, 0.0)  # swinging in the grasp: not resting
        state = replace(state, velocities=velocities)
        assert state.held == "mug"
        return (float(labelling_expert(spec, "local").act(state)[3]),
                float(labelling_expert(spec, "column").act(state)[3]))

    assert labels((0.011, 0.0, -0.018)) == (-1.0, 1.0)  # pressed under the drop point, 1.1 cm off centre
    assert labels((0.005, 0.0, 0.005)) == (1.0, 1.0)  # at the drop point: both let go
    assert labels((0.0, 0.0, 0.03)) == (-1.0, -1.0)  # 3 cm over it: both go down first
    assert labels((0.025, 0.0, -0.018)) == (-1.0, -1.0)  # 2.5 cm off centre: both centre it first


def test_the_place_labeller_lets_go_over_a_support_only_where_the_hand_pushes_the_object_up() -> None:
    """A held object still 2.5 cm over its drop goal rests on something only if the fingers have slid down it (the
    hand pushed it onto a support). Held still in the air, it is told to go down: with the fingers coupled a held
    object can be still in the air, where a student holding it was once labelled "let go" 3.4 cm up."""
    from dataclasses import replace

    from envs.experts import StatePlaceExpert
    from envs.predicates import grasp_point as grasp_point_of

    spec = TaskSpec("place_on", ("mug", "plate"))
    labeller = StatePlaceExpert(spec, local_spots=True)
    scene = {"red_block": (0.35, 0.05, 0.022), "bowl": (0.35, -0.3, 0.0), "mug": (0.5, -0.1, 0.17),
             "plate": (0.5, -0.1, 0.0)}
    goal = labeller.goal(_kitchen(scene))
    above = _kitchen({**scene, "mug": tuple(goal + np.array([0.0, 0.0, 0.025]))})
    grasp_point = grasp_point_of(above, "mug")
    hanging = replace(above, ee_position=grasp_point + np.array([0.0, 0.0, 0.001]))
    pushed_up = replace(above, ee_position=grasp_point - np.array([0.0, 0.0, 0.012]))
    assert hanging.held == pushed_up.held == "mug"
    down = labeller.act(hanging)
    assert down[2] < 0 and down[3] < 0, f"held still in the air over the goal: go down, closed (got {down})"
    np.testing.assert_array_equal(labeller.act(pushed_up), [0.0, 0.0, 0.0, 1.0])
