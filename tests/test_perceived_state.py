"""Perceived-state skills (issues 14 and 15): state policies acting on object rows rebuilt from the scene estimator.

The rows' layout must be the env contract's, nothing privileged may reach the policy, remembered positions must
stand in for what the cameras miss, and a shipped perceived-state skill must act in the loop from the senses.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from gymnasium import spaces

from agent.perceived_state import (
    ANCHOR_OFFSETS,
    ROWS,
    PerceivedObjectRows,
    PerceivedStatePolicy,
    RowGeometry,
)
from agent.skills import MOVABLE
from perception.scene_estimator import SHIPPED_WEIGHTS, UNKNOWN, ObjectEstimate, SceneEstimate, SceneEstimator

CABINET = (0.62, 0.30, 0.0)


@pytest.fixture(scope="module")
def estimator() -> SceneEstimator:
    return SceneEstimator.load(SHIPPED_WEIGHTS)


def scene(positions: dict[str, tuple[float, float, float]], unknown: tuple[str, ...] = (), drawer_open: bool = False,
          anchors: dict | None = None, pixels: dict | None = None) -> SceneEstimate:
    objects = {name: ObjectEstimate(name, UNKNOWN if name in unknown else "table", 0.9, 0.9, positions[name], "table")
               for name in MOVABLE}
    return SceneEstimate(objects, drawer_open, 0.9, False, 0.9, anchors=anchors or {}, anchor_pixels=pixels or {})


def test_rows_follow_the_env_contract(estimator: SceneEstimator) -> None:
    """Seven rows of position, yaw (0), offset from the grasp point; then the drawer's opening and position."""
    from envs.observation import OBJECT_FEATURES
    from envs.scene import CABINET_POSITION

    assert CABINET_POSITION == CABINET
    positions = {name: (0.4 + 0.01 * i, -0.1 * i, 0.02) for i, name in enumerate(MOVABLE)}
    anchors = {"bowl": (0.5, 0.1, 0.05), "plate": (0.3, -0.2, 0.03)}
    rows = PerceivedObjectRows(estimator, RowGeometry(CABINET))
    grasp = np.array([0.45, 0.0, 0.3])
    vector = rows.rows(scene(positions, drawer_open=True, anchors=anchors, pixels={"bowl": 50.0, "plate": 40.0}),
                       grasp)
    assert vector.shape == (len(ROWS) * OBJECT_FEATURES + 4,) and vector.dtype == np.float32
    table = vector[:56].reshape(7, 8)
    for i, name in enumerate(ROWS):
        expected = np.array(positions.get(name) or np.add(anchors[name], ANCHOR_OFFSETS[name]))
        assert np.allclose(table[i, :3], expected, atol=1e-6), name
        assert table[i, 3:5].tolist() == [0.0, 1.0]
        assert np.allclose(table[i, 5:8], expected - grasp, atol=1e-6)
    assert np.allclose(vector[56:], [0.13, CABINET[0] - 0.13, CABINET[1], CABINET[2]])
    closed = rows.rows(scene(positions, anchors=anchors, pixels={"bowl": 50.0, "plate": 40.0}), grasp)
    assert np.allclose(closed[56:], [0.0, *CABINET])


def test_what_the_cameras_miss_keeps_its_last_perceived_position(estimator: SceneEstimator) -> None:
    rows = PerceivedObjectRows(estimator, RowGeometry(CABINET))
    grasp = np.zeros(3)
    seen = {name: (0.4, 0.0, 0.02) for name in MOVABLE}
    anchors = {"bowl": (0.5, 0.1, 0.05), "plate": (0.3, -0.2, 0.03)}
    rows.rows(scene(seen, anchors=anchors, pixels={"bowl": 100.0, "plate": 100.0}), grasp)
    guessed = {**seen, "red_block": (9.0, 9.0, 9.0)}  # unknown: the estimator's position is a guess
    moved_anchors = {"bowl": (0.7, 0.1, 0.05), "plate": (0.35, -0.2, 0.03)}
    # the bowl half hidden (its median dragged): the better view stays; the plate fully seen: its new place
    vector = rows.rows(scene(guessed, unknown=("red_block",), anchors=moved_anchors,
                             pixels={"bowl": 40.0, "plate": 95.0}), grasp)
    table = vector[:56].reshape(7, 8)
    assert np.allclose(table[0, :3], seen["red_block"])
    assert np.allclose(table[ROWS.index("bowl"), :3], np.add(anchors["bowl"], ANCHOR_OFFSETS["bowl"]))
    assert np.allclose(table[ROWS.index("plate"), :3], np.add(moved_anchors["plate"], ANCHOR_OFFSETS["plate"]))
    rows.reset()  # a new episode: nothing remembered, the guess is all there is
    vector = rows.rows(scene(guessed, unknown=("red_block",)), grasp)
    assert np.allclose(vector[:3], (9.0, 9.0, 9.0))


class FakeStatePolicy:
    """Records what a state policy is given."""

    def __init__(self) -> None:
        self.action_space = spaces.Box(-1, 1, (4,), np.float32)
        self.observation_space = spaces.Dict({"proprio": spaces.Box(-np.inf, np.inf, (21,), np.float32),
                                              "objects": spaces.Box(-np.inf, np.inf, (60,), np.float32),
                                              "goal": spaces.Box(-1, 1, (384,), np.float32)})
        self.log_std = None
        self.seen: list[dict] = []

    def predict(self, obs: dict, deterministic: bool = True) -> tuple[np.ndarray, None]:
        self.seen.append(obs)
        return np.zeros(4, np.float32), None


def senses(estimator: SceneEstimator, seed: int = 0) -> dict[str, np.ndarray]:
    from perception.scene_estimator import expected_shapes

    rng = np.random.default_rng(seed)
    obs = {key: rng.integers(0, 256, shape, dtype=np.uint8) if key.startswith("rgb") else
           rng.uniform(0.3, 1.5, shape).astype(np.float32) for key, shape in expected_shapes(estimator.config).items()}
    obs["goal"] = np.zeros(384, np.float32)
    return obs


def test_the_state_policy_sees_only_proprio_perceived_rows_and_goal(estimator: SceneEstimator) -> None:
    inner = FakeStatePolicy()
    policy = PerceivedStatePolicy(inner, PerceivedObjectRows(estimator, RowGeometry(CABINET)))
    assert "objects" not in policy.observation_space.spaces
    assert set(policy.observation_space.spaces) == {"rgb_front", "depth_front", "rgb_wrist", "depth_wrist", "touch",
                                                    "proprio", "goal"}
    obs = senses(estimator)
    policy.predict(obs)
    given = inner.seen[-1]
    assert set(given) == {"proprio", "objects", "goal"}
    assert np.array_equal(given["objects"], policy.rows(obs))
    with pytest.raises(ValueError, match="refuses privileged observation keys"):
        policy.predict({**senses(estimator, seed=1), "objects": np.zeros(60, np.float32)})


def test_a_bad_perceived_state_entry_is_refused(tmp_path) -> None:
    from agent.perceived_state import perceived_policy
    from agent.policy import InputError

    with pytest.raises(InputError, match="cabinet_position"):
        perceived_policy(FakeStatePolicy(), {"estimator": "shipped"}, tmp_path)
    with pytest.raises(FileNotFoundError, match="no scene-estimator checkpoint"):
        perceived_policy(FakeStatePolicy(), {"estimator": "missing.pt", "cabinet_position": [0, 0, 0],
                                             "open_opening": 0.1, "anchor_offsets": {}}, tmp_path)


def test_rows_need_a_segmenting_estimator_of_the_kitchens_objects(estimator: SceneEstimator) -> None:
    from dataclasses import replace

    other = SimpleNamespace(config=replace(estimator.config, objects=("red_block", "mug")))
    with pytest.raises(ValueError, match="perceived object rows need"):
        PerceivedObjectRows(other, RowGeometry(CABINET))  # type: ignore[arg-type]


def test_the_estimator_answers_a_repeated_observation_once(estimator: SceneEstimator, monkeypatch) -> None:
    """The perceiving world and a perceived-state skill read the same frame at each step: one network pass."""
    calls = []
    original = estimator.probabilities
    monkeypatch.setattr(estimator, "probabilities", lambda obs: calls.append(1) or original(obs))
    obs = senses(estimator, seed=3)
    obs.pop("goal")
    first = estimator.estimate(obs)
    assert estimator.estimate({key: value.copy() for key, value in obs.items()}) is first and len(calls) == 1
    changed = {**obs, "proprio": obs["proprio"] + 0.01}
    assert estimator.estimate(changed) is not first and len(calls) == 2


@pytest.mark.parametrize("argv, phrase", [
    (["--card", "agent/skill_policies/open.json"], "wraps a state policy of reach, pick"),
    (["--card", "missing.json"], "not a readable skill-policy card"),
    (["--card", "agent/skill_policies/pick.json", "--episodes", "0"], "--episodes must be >= 1"),
    (["--card", "agent/skill_policies/pick.json", "--prefix", "teacher"], "teacher"),
    (["--card", "agent/skill_policies/pick.json", "--estimator", "none.pt"], "no scene-estimator checkpoint"),
])
def test_perceive_skill_refuses_bad_arguments_with_exit_2(tmp_path, argv, phrase, capsys) -> None:
    from experiments.cli import main

    out = tmp_path / "card.json"
    assert main(["perceive-skill", *argv, "--out", str(out)]) == 2
    assert phrase in capsys.readouterr().err and not out.exists()


def test_perceive_skill_writes_a_card_the_agent_loads(tmp_path) -> None:
    """Two episodes of the perceived reach: a card that points at the state weights and loads as shipped ones do."""
    from agent.policy import load_card_policy, read_card
    from experiments.cli import main

    out = tmp_path / "rgbd" / "reach.json"
    assert main(["perceive-skill", "--card", "agent/skill_policies/reach.json", "--episodes", "2",
                 "--reset-episodes", "0", "--out", str(out)]) == 0
    card = read_card(out)
    assert card.meta["obs_mode"] == "rgbd_touch" and card.meta["eval"]["episodes"] == 2
    assert card.meta["eval_perceived"]["episodes"] == 2  # the same starts, judged as the perceiving loop judges
    assert card.path.resolve().name == "reach.safetensors" and card.meta["perceived_state"]["estimator"] == "shipped"
    assert isinstance(load_card_policy(card), PerceivedStatePolicy)


def test_auto_trusts_the_rate_judged_the_way_its_loop_judges(tmp_path) -> None:
    """A skill that passes the threshold on oracle-ended episodes but not on perceived ones runs the expert in a
    perceiving agent's loop, and the learned policy in an oracle-facts one."""
    import json
    import shutil

    from agent.policy import LearnedSkillProvider, find_cards
    from agent.skills import SkillCall

    meta = json.loads(Path("agent/skill_policies/reach.json").read_text())
    meta["eval"]["rate"], meta["eval_perceived"] = 0.95, {"rate": 0.6, "episodes": 100}
    (tmp_path / "reach.json").write_text(json.dumps(meta))
    shutil.copy("agent/skill_policies/reach.safetensors", tmp_path / "reach.safetensors")
    card = find_cards(tmp_path)["reach"]
    assert card.rate_judged(True) == 0.6 and card.rate_judged(False) == 0.95
    call = SkillCall("reach", ("red_block",))
    perceiving = LearnedSkillProvider(lambda c: None, "auto", tmp_path, judged_by_perception=True)  # type: ignore[arg-type,return-value]
    oracle = LearnedSkillProvider(lambda c: None, "auto", tmp_path)  # type: ignore[arg-type,return-value]
    assert perceiving.choice(call)[0] is None and "as perception judges" in perceiving.explain(call)
    assert oracle.choice(call)[0] == card


def test_a_perceived_success_counts_only_where_the_oracle_sees_the_effect() -> None:
    """Pick: the object is held (lifted or not); place: the oracle's in/on fact; other skills: its verdict."""
    from agent.skills import SkillCall
    from experiments.imitation.evaluate import _oracle_agrees

    def world(held: str | None, facts: list, task_args: tuple = (), verdicts: dict | None = None) -> SimpleNamespace:
        env = SimpleNamespace(scene_state=lambda: SimpleNamespace(held=held), facts=lambda: facts,
                              task=SimpleNamespace(args=task_args))
        return SimpleNamespace(env=env, oracle_steps=verdicts or {})

    pick = SkillCall("pick", ("red_block",))
    assert _oracle_agrees(world("red_block", []), pick) and not _oracle_agrees(world("mug", []), pick)
    place = SkillCall("place", ("yellow_block",))
    on = [["on", "red_block", "yellow_block"]]
    assert _oracle_agrees(world(None, on, ("red_block", "yellow_block")), place)
    assert not _oracle_agrees(world(None, [["on", "red_block", "table"]], ("red_block", "yellow_block")), place)
    in_bowl = world(None, [["in", "red_block", "bowl"]], ("red_block", "bowl"))
    assert _oracle_agrees(in_bowl, SkillCall("place", ("bowl",)))
    push = SkillCall("push", ("red_block", "left"))
    assert not _oracle_agrees(world(None, [], verdicts={("push", "red_block", "left"): False}), push)
    assert _oracle_agrees(world(None, [], verdicts={("push", "red_block", "left"): True}), push)


def test_a_held_object_rides_with_the_hand_where_the_card_gives_its_offset(estimator: SceneEstimator) -> None:
    """While the estimator says an object is held, its row is the grasp point plus the measured offset in x and z
    (y stays perceived); without held offsets (older cards) the perceived position stands."""
    from agent.perceived_state import HELD_OFFSETS
    from perception.scene_estimator import HELD

    positions = {name: (0.4, 0.1 * i, 0.02) for i, name in enumerate(MOVABLE)}
    positions["mug"] = (0.47, 0.05, 0.09)  # the jittery centre of what the fingers leave visible
    estimate = scene(positions)
    estimate.objects["mug"] = ObjectEstimate("mug", HELD, 0.99, 0.9, positions["mug"], HELD)
    grasp = np.array([0.45, 0.04, 0.12])
    riding = PerceivedObjectRows(estimator, RowGeometry(CABINET, held_offsets=HELD_OFFSETS))
    row = riding.rows(estimate, grasp)[:56].reshape(7, 8)[ROWS.index("mug")]
    dx, _, dz = HELD_OFFSETS["mug"]
    assert np.allclose(row[:3], [0.45 + dx, 0.05, 0.12 + dz], atol=1e-6)
    assert np.allclose(row[5:8], row[:3] - grasp, atol=1e-6)
    assert dz < -0.02  # the mug hangs below the grasp point; a block's origin sits at it
    plain = PerceivedObjectRows(estimator, RowGeometry(CABINET))
    assert np.allclose(plain.rows(estimate, grasp)[:56].reshape(7, 8)[ROWS.index("mug"), :3], positions["mug"])
    with pytest.raises(Exception, match="held_offsets must be 3 numbers"):
        from agent.perceived_state import perceived_policy

        perceived_policy(FakeStatePolicy(), {"estimator": "shipped", "cabinet_position": list(CABINET),
                                             "open_opening": 0.13, "anchor_offsets": {},
                                             "held_offsets": {"mug": [0.0, -0.03]}}, Path("."), estimator)


def test_yaw_blind_rows_zero_every_yaw_and_nothing_else() -> None:
    from agent.perceived_state import without_yaw

    rng = np.random.default_rng(0)
    batch = rng.normal(size=(3, 60)).astype(np.float32)
    blind = without_yaw(batch)
    rows = blind[:, :56].reshape(3, 7, 8)
    assert np.all(rows[:, :, 3] == 0.0) and np.all(rows[:, :, 4] == 1.0)
    keep = np.ones(60, bool)
    keep[[r * 8 + 3 for r in range(7)] + [r * 8 + 4 for r in range(7)]] = False
    assert np.array_equal(blind[:, keep], batch[:, keep]) and not np.array_equal(blind, batch)
    assert np.array_equal(without_yaw(batch[0]), blind[0])


def test_a_yaw_blind_card_is_loaded_to_read_rows_without_yaw(tmp_path, monkeypatch) -> None:
    """A state policy trained with --blind-yaw must see yaw-blind rows wherever the agent runs it."""
    import json
    import shutil

    import agent.policy as policy_module
    from agent.policy import load_card_policy, read_card

    meta = json.loads(Path("agent/skill_policies/reach.json").read_text())
    meta["blind_yaw"] = True
    (tmp_path / "reach.json").write_text(json.dumps(meta))
    shutil.copy("agent/skill_policies/reach.safetensors", tmp_path / "reach.safetensors")
    fake = FakeStatePolicy()
    monkeypatch.setattr(policy_module, "load_sb3_policy", lambda path, device="cpu": fake)
    policy = load_card_policy(read_card(tmp_path / "reach.json"))
    objects = np.full(60, 0.5, np.float32)
    policy.predict({"proprio": np.zeros(21, np.float32), "objects": objects, "goal": np.zeros(384, np.float32)})
    seen = fake.seen[-1]["objects"][:56].reshape(7, 8)
    assert np.all(seen[:, 3] == 0.0) and np.all(seen[:, 4] == 1.0) and np.all(seen[:, :3] == 0.5)
    meta["blind_yaw"] = False
    (tmp_path / "reach.json").write_text(json.dumps(meta))
    assert load_card_policy(read_card(tmp_path / "reach.json")) is fake


def test_a_perceived_card_whose_state_weights_changed_is_refused(tmp_path) -> None:
    """The card's rates describe the weights it measured; other weights behind it must be re-carded, not trusted."""
    import json
    import shutil

    from agent.policy import load_card_policy, read_card

    meta = json.loads(Path("agent/skill_policies/rgbd_touch/reach.json").read_text())
    meta["file"] = "reach.safetensors"
    (tmp_path / "reach.json").write_text(json.dumps(meta))
    shutil.copy("agent/skill_policies/pick.safetensors", tmp_path / "reach.safetensors")  # other weights
    with pytest.raises(Exception, match="re-card it with `embodia perceive-skill`"):
        load_card_policy(read_card(tmp_path / "reach.json"))


def test_dagger_refuses_blind_yaw_without_state_rows() -> None:
    from experiments.imitation.dagger import DaggerConfig

    with pytest.raises(Exception, match="--blind-yaw hides the yaw"):
        DaggerConfig(task="pick", obs_mode="rgbd_touch", blind_yaw=True)


def test_a_yaw_blind_skill_env_shows_the_same_scene_without_yaw() -> None:
    """`dagger --blind-yaw` records what the student reads: the env's rows with the yaw zeroed, nothing else."""
    from experiments.imitation.rollout import SkillEnv
    from experiments.training.language import EmbeddingTable, all_texts
    from perception.text import default_text_encoder

    table = EmbeddingTable.build(default_text_encoder("hashing"), all_texts("pick"), source="hashing")
    seen, blind = (SkillEnv("pick", "state", "reset", table, blind_yaw=flag) for flag in (False, True))
    try:
        plain_obs, _ = seen.reset(3)
        blind_obs, _ = blind.reset(3)
        rows, blind_rows = plain_obs["objects"][:56].reshape(7, 8), blind_obs["objects"][:56].reshape(7, 8)
        assert not np.allclose(rows[:, 3], 0.0)  # the scene's objects do have yaw
        assert np.all(blind_rows[:, 3] == 0.0) and np.all(blind_rows[:, 4] == 1.0)
        assert np.array_equal(np.delete(rows, [3, 4], axis=1), np.delete(blind_rows, [3, 4], axis=1))
        step = np.zeros(4, np.float32)
        assert np.all(blind.step(step)[0]["objects"][:56].reshape(7, 8)[:, 4] == 1.0)
    finally:
        seen.close()
        blind.close()
    with pytest.raises(Exception, match="blind yaw hides the yaw"):
        SkillEnv("pick", "rgbd_touch", "reset", table, blind_yaw=True)


def test_every_shipped_perceived_card_measured_the_weights_it_points_at(estimator: SceneEstimator) -> None:
    """A shipped perceived-state card loads only if its state weights are the ones its rates were measured on."""
    from agent.policy import find_cards, load_card_policy

    perceived = [card for card in find_cards("agent/skill_policies/rgbd_touch").values()
                 if "perceived_state" in card.meta]
    assert {card.task for card in perceived} >= {"reach", "pick", "push", "place_in", "place_on"}
    for card in perceived:
        assert isinstance(load_card_policy(card, estimator=estimator), PerceivedStatePolicy), card.task
