"""The scene estimator's wiring (on a tiny untrained network), its unknown rule, checkpoints, `ask` and the data."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.cli import main
from experiments.scene_estimation.questions import UngroundedQuestion, answer, ground
from perception.scene_estimator import (
    SENSES,
    UNKNOWN,
    EstimatorConfig,
    ObjectEstimate,
    SceneEstimate,
    SceneEstimator,
)

OBJECTS = ("red_block", "green_block", "mug")
LOCATIONS = ("table", "bowl", "drawer", "plate", "on_red_block", "on_green_block", "held", "none")


def tiny_config(size: int = 16) -> EstimatorConfig:
    return EstimatorConfig(objects=OBJECTS, locations=LOCATIONS, image_size=size, input_size=size, width=4)


def observation(size: int = 16, batch: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    return {"rgb_front": rng.integers(0, 256, (*lead, size, size, 3), dtype=np.uint8),
            "depth_front": rng.uniform(0.3, 2.0, (*lead, size, size, 1)).astype(np.float32),
            "rgb_wrist": rng.integers(0, 256, (*lead, size, size, 3), dtype=np.uint8),
            "depth_wrist": rng.uniform(0.05, 2.0, (*lead, size, size, 1)).astype(np.float32),
            "touch": rng.normal(size=(*lead, 38)).astype(np.float32),
            "proprio": rng.normal(size=(*lead, 21)).astype(np.float32)}


class SpyObservation(Mapping):
    """An observation that records which keys are read (and holds a privileged key it must never read)."""

    def __init__(self, obs: dict[str, np.ndarray], extra: dict[str, np.ndarray]) -> None:
        self._data, self.read = {**obs, **extra}, set()

    def __getitem__(self, key: str) -> np.ndarray:
        self.read.add(key)
        return self._data[key]

    def __contains__(self, key: object) -> bool:  # asking whether a key is there is not reading it
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_tiny_estimator_shapes_and_facts() -> None:
    torch.manual_seed(0)
    estimator = SceneEstimator(tiny_config())
    probs = estimator.probabilities(observation(batch=4))
    assert probs["location"].shape == (4, len(OBJECTS), len(LOCATIONS))
    assert np.allclose(probs["location"].sum(-1), 1.0, atol=1e-5)
    assert probs["visible"].shape == (4, len(OBJECTS)) and probs["position"].shape == (4, len(OBJECTS), 3)
    assert probs["drawer"].shape == (4,) and probs["holding"].shape == (4,)
    scene = estimator.estimate(observation())
    assert set(scene.objects) == set(OBJECTS)
    facts = scene.facts()
    assert facts[-1] in (["open", "drawer"], ["closed", "drawer"])
    assert (["gripper_empty"] in facts) != scene.holding
    assert len(estimator.estimate_batch(observation(batch=3))) == 3


def test_estimator_reads_only_the_senses_and_refuses_privileged_keys() -> None:
    estimator = SceneEstimator(tiny_config())
    spy = SpyObservation(observation(), {"extra_sensor": np.zeros(3)})
    estimator.estimate(spy)
    assert spy.read <= set(SENSES), f"read {spy.read - set(SENSES)}"
    cheating = {**observation(), "objects": np.zeros(44, np.float32)}
    with pytest.raises(ValueError, match="privileged"):
        estimator.estimate(cheating)


def test_wrong_observation_space_is_a_clear_error() -> None:
    estimator = SceneEstimator(tiny_config(16))
    with pytest.raises(ValueError, match=r"rgb_front.*\(32, 32, 3\).*expects \(16, 16, 3\)"):
        estimator.estimate(observation(32))
    state_only = {"proprio": np.zeros(21, np.float32)}
    with pytest.raises(ValueError, match="lacks"):
        estimator.estimate(state_only)


def _probs(visible: list[float], location: list[list[float]], holding: float = 0.1, drawer: float = 0.9):
    return {"location": np.asarray(location), "visible": np.asarray(visible), "position": np.zeros((3, 3)),
            "drawer": np.float32(drawer), "holding": np.float32(holding)}


def test_unseen_object_is_unknown_not_a_guess() -> None:
    estimator = SceneEstimator(tiny_config())
    drawer = [0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.1, 0.0]
    table = [0.95, 0.05, 0, 0, 0, 0, 0, 0]
    scene = estimator.decode(_probs([0.9, 0.2, 0.9], [table, drawer, table]))
    assert scene.objects["green_block"].location == UNKNOWN
    assert scene.objects["green_block"].best_guess == "drawer"  # kept for diagnosis, not reported as a fact
    assert scene.unknown == ["green_block"]
    assert [fact for fact in scene.facts() if "green_block" in fact] == [["unknown", "green_block"]]  # no guess
    assert ["on", "red_block", "table"] in scene.facts() and ["open", "drawer"] in scene.facts()


def test_holding_decides_which_object_is_held() -> None:
    estimator = SceneEstimator(tiny_config())
    held_a = [0.1, 0, 0, 0, 0, 0, 0.9, 0]
    held_b = [0.3, 0, 0, 0, 0, 0, 0.7, 0]
    # Gripper empty: nobody may be held, each object falls back to its next best class.
    scene = estimator.decode(_probs([0.9, 0.9, 0.9], [held_a, held_b, held_b], holding=0.05))
    assert all(e.location != "held" for e in scene.objects.values())
    assert ["gripper_empty"] in scene.facts()
    # Holding, and only the most likely object is held, even if the wrist camera barely sees it.
    scene = estimator.decode(_probs([0.1, 0.9, 0.9], [held_a, held_b, held_b], holding=0.97))
    assert scene.objects["red_block"].location == "held"
    assert [e.location for e in scene.objects.values()].count("held") == 1
    assert ["holding", "red_block"] in scene.facts() and ["gripper_empty"] not in scene.facts()


def test_low_confidence_is_unknown() -> None:
    config = EstimatorConfig(objects=OBJECTS, locations=LOCATIONS, image_size=16, input_size=16, width=4,
                             min_confidence=0.6)
    unsure = [0.4, 0.35, 0.25, 0, 0, 0, 0, 0]
    scene = SceneEstimator(config).decode(_probs([0.9, 0.9, 0.9], [unsure, unsure, unsure]))
    assert scene.unknown == list(OBJECTS)


def test_checkpoint_round_trip_and_errors(tmp_path: Path) -> None:
    torch.manual_seed(1)
    estimator = SceneEstimator(tiny_config())
    path = estimator.save(tmp_path / "est.pt", card={"note": "untrained"})
    loaded = SceneEstimator.load(path)
    obs = observation()
    assert loaded.config == estimator.config and loaded.card["note"] == "untrained"
    for key, value in estimator.probabilities(obs).items():
        np.testing.assert_allclose(loaded.probabilities(obs)[key], value, rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="no scene-estimator checkpoint"):
        SceneEstimator.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    (tmp_path / "junk.pt.json").write_text((tmp_path / "est.pt.json").read_text())
    with pytest.raises(ValueError, match="not a readable torch state_dict"):
        SceneEstimator.load(tmp_path / "junk.pt")
    wider = SceneEstimator(EstimatorConfig(objects=OBJECTS, locations=LOCATIONS, image_size=16, input_size=16,
                                           width=8))
    wider.save(tmp_path / "wide.pt")
    (tmp_path / "wide.pt.json").write_text((tmp_path / "est.pt.json").read_text())
    with pytest.raises(ValueError, match="does not fit"):
        SceneEstimator.load(tmp_path / "wide.pt")


def _scene(locations: dict[str, str], drawer_open: bool = False, holding: bool = False) -> SceneEstimate:
    objects = {name: ObjectEstimate(name, loc, 0.9, 0.1 if loc == UNKNOWN else 0.95, (0.0, 0.0, 0.0), loc)
               for name, loc in locations.items()}
    return SceneEstimate(objects, drawer_open, 0.97, holding, 0.99)


def test_questions_are_grounded_and_answered_from_the_estimate() -> None:
    scene = _scene({"red_block": "bowl", "green_block": UNKNOWN, "mug": "on_red_block"}, drawer_open=True)
    assert answer("Is the drawer open?", scene).value is True
    assert answer("is the drawer closed", scene).value is False
    reply = answer("where is the red cube?", scene)
    assert reply.value == "bowl" and "in the bowl" in reply.text and reply.confidence == pytest.approx(0.9)
    assert "cannot see" in answer("where is the green block?", scene).text
    reply = answer("what is in the bowl?", scene)
    assert reply.value == ["red_block"] and reply.unknown == ["green_block"]
    assert answer("what is on the red block?", scene).value == ["mug"]
    assert answer("is the mug on the red block?", scene).value is True
    assert answer("what is the gripper holding?", scene).value is False
    assert ground("where is the cup", OBJECTS).subject == "mug"
    for question in ("what colour is the sky?", "where is the purple elephant?", "", "open the drawer please"):
        with pytest.raises(UngroundedQuestion, match="cannot ground"):
            ground(question, OBJECTS)


def test_ask_cli_refuses_ungroundable_questions_and_bad_inputs(tmp_path: Path, capsys) -> None:
    checkpoint = SceneEstimator(tiny_config()).save(tmp_path / "est.pt")
    saved = tmp_path / "obs.npz"
    np.savez(saved, **observation())
    assert main(["ask", "is the drawer open?", "--obs", str(saved), "--checkpoint", str(checkpoint), "--json"]) == 0
    assert '"answer"' in capsys.readouterr().out
    assert main(["ask", "what colour is the sky?", "--obs", str(saved), "--checkpoint", str(checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "cannot ground the question 'what colour is the sky?'" in err and err.count("\n") == 1
    assert main(["ask", "is the drawer open?", "--obs", str(saved), "--checkpoint", str(tmp_path / "nope.pt")]) == 2
    assert "no scene-estimator checkpoint" in capsys.readouterr().err
    big = tmp_path / "big.npz"
    np.savez(big, **observation(32))
    assert main(["ask", "is the drawer open?", "--obs", str(big), "--checkpoint", str(checkpoint)]) == 2
    assert "expects (16, 16, 3)" in capsys.readouterr().err
    cheat = tmp_path / "cheat.npz"
    np.savez(cheat, **observation(), objects=np.zeros(44))
    assert main(["ask", "is the drawer open?", "--obs", str(cheat), "--checkpoint", str(checkpoint)]) == 2
    assert "privileged" in capsys.readouterr().err


def test_collection_labels_frames_from_the_oracle(tmp_path: Path) -> None:
    from experiments.scene_estimation.data import SceneDataConfig, collect, load_frames
    from experiments.scene_estimation.labels import LOCATIONS as VOCAB
    from experiments.scene_estimation.labels import OBJECTS as NAMES
    from experiments.scene_estimation.labels import location_of

    config = SceneDataConfig(image_size=32, chain_length=1, frame_every=8, episodes_per_shard=1)
    collect([3], tmp_path, config, encoder="hashing")
    frames = load_frames(tmp_path)
    n = len(frames["holding"])
    assert n > 3 and frames["rgb_front"].shape == (n, 32, 32, 3) and frames["pixels"].shape == (n, len(NAMES), 2)
    assert frames["location"].max() < len(VOCAB) and "objects" not in frames
    assert frames["location"][0].tolist() == [VOCAB.index("table")] * len(NAMES)  # every object starts on the table
    assert (frames["pixels"][0].sum(-1) > 0).all()  # and is seen at the start
    assert location_of([["in", "red_block", "bowl"], ["holding", "mug"]], "mug") == "held"
    assert location_of([["on", "red_block", "green_block"]], "red_block") == "on_green_block"
    assert location_of([], "red_block") == "none"


class FixedEstimator:
    """Perceives the same scene whatever it is shown (drawer closed, everything on the table)."""

    def __init__(self, config: EstimatorConfig) -> None:
        self.config, self.calls = config, 0

    def estimate(self, obs: Mapping[str, np.ndarray]) -> SceneEstimate:
        from perception.scene_estimator import check_observation

        check_observation(obs, self.config)  # refuses privileged keys, as the real one does
        self.calls += 1
        objects = {name: ObjectEstimate(name, "table", 0.99, 0.99, (0.5, 0.0, 0.02), "table")
                   for name in self.config.objects}
        return SceneEstimate(objects, False, 0.99, False, 0.99)


def test_perceived_world_never_consults_the_oracle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Facts come from perception and a skill ends when perception sees its effect, never on the oracle's word."""
    import envs.household as household
    from agent.loop import EmbodiedAgent
    from agent.planner import GroundedPlanner
    from experiments.kitchen.perceived_world import PerceivedKitchenWorld
    from experiments.kitchen.world import ScriptedProvider
    from experiments.scene_estimation.labels import LOCATIONS as VOCAB
    from experiments.scene_estimation.labels import OBJECTS as NAMES
    from perception.text import HashingTextEncoder

    def oracle_facts(*_: object) -> None:
        raise AssertionError("the oracle's facts were read")

    monkeypatch.setattr(household.HouseholdEnv, "facts", oracle_facts)
    monkeypatch.setattr(household, "check_success", lambda *_: True)  # an oracle that says every skill is done
    estimator = FixedEstimator(EstimatorConfig(objects=NAMES, locations=VOCAB, image_size=16, input_size=16))
    env = household.HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=16, max_steps=6)
    try:
        world = PerceivedKitchenWorld(env, estimator, score_with_oracle=False)  # type: ignore[arg-type]
        world.reset(seed=0)
        agent = EmbodiedAgent(GroundedPlanner(HashingTextEncoder()), ScriptedProvider(world), max_replans=0)
        record = agent.run(world, "open the drawer")
    finally:
        env.close()
    assert [s.call.skill for s in record.steps] == ["open"]
    assert record.steps[0].steps == 6 and not record.steps[0].success  # perception never saw it open
    assert not record.success and ["closed", "drawer"] in record.final_facts
    assert world.trace and world.trace[0]["perceived"] == record.final_facts and "true" not in world.trace[0]
    assert estimator.calls >= 6


class ScriptedEstimates:
    """Perceives a given sequence of scenes, one per call (the last one repeats)."""

    def __init__(self, config: EstimatorConfig, scenes: list[dict[str, str]], holding: list[bool]) -> None:
        self.config, self.scenes, self.holding, self.calls = config, scenes, holding, 0

    def estimate(self, obs: Mapping[str, np.ndarray]) -> SceneEstimate:
        index = min(self.calls, len(self.scenes) - 1)
        self.calls += 1
        objects = {name: ObjectEstimate(name, self.scenes[index].get(name, "table"), 0.9, 0.9, (0.5, 0.0, 0.02),
                                        "table") for name in self.config.objects}
        return SceneEstimate(objects, False, 0.99, self.holding[index], 0.99)


def test_an_unseen_object_is_believed_where_it_was_last_seen() -> None:
    """Object permanence: the block seen in the drawer stays there once the closed drawer hides it."""
    from envs.household import HouseholdEnv
    from experiments.kitchen.perceived_world import PerceivedKitchenWorld
    from experiments.scene_estimation.labels import LOCATIONS as VOCAB
    from experiments.scene_estimation.labels import OBJECTS as NAMES

    config = EstimatorConfig(objects=NAMES, locations=VOCAB, image_size=16, input_size=16)
    scenes = [{"red_block": "drawer", "mug": "held"}, {"red_block": UNKNOWN, "mug": UNKNOWN},
              {"red_block": "bowl", "mug": UNKNOWN}]
    estimator = ScriptedEstimates(config, scenes, holding=[True, False, False])
    env = HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=16)
    try:
        world = PerceivedKitchenWorld(env, estimator, score_with_oracle=False)  # type: ignore[arg-type]
        world.reset(seed=0)
        first = world.facts()
        assert ["in", "red_block", "drawer"] in first and ["holding", "mug"] in first
        second = world.facts()
        assert ["in", "red_block", "drawer"] in second  # remembered, and marked as such in the trace
        assert world.trace[-1]["remembered"] == {"red_block": ["in", "red_block", "drawer"]}
        assert not any(f[0] == "holding" for f in second)  # a grasp the fingers no longer feel is not believed
        third = world.facts()  # seen again elsewhere: perception wins over memory
        assert ["in", "red_block", "bowl"] in third and ["in", "red_block", "drawer"] not in third
        world.reset(seed=1)
        assert world.last_seen == {}
    finally:
        env.close()


class DrawerReadings:
    """Perceives every object on the table and the drawer as given, (open, confidence) per call."""

    def __init__(self, config: EstimatorConfig, readings: list[tuple[bool, float]]) -> None:
        self.config, self.readings, self.calls = config, readings, 0

    def estimate(self, obs: Mapping[str, np.ndarray]) -> SceneEstimate:
        is_open, confidence = self.readings[min(self.calls, len(self.readings) - 1)]
        self.calls += 1
        objects = {name: ObjectEstimate(name, "table", 0.99, 0.99, (0.5, 0.0, 0.02), "table")
                   for name in self.config.objects}
        return SceneEstimate(objects, is_open, confidence, False, 0.99)


def test_an_unsure_drawer_reading_gives_way_to_the_last_sure_one() -> None:
    """A closed drawer read "open" at 0.7 stays believed closed; a sure reading wins; a new scene forgets."""
    from envs.household import HouseholdEnv
    from experiments.kitchen.perceived_world import DRAWER_SURE, PerceivedKitchenWorld
    from experiments.scene_estimation.labels import LOCATIONS as VOCAB
    from experiments.scene_estimation.labels import OBJECTS as NAMES

    config = EstimatorConfig(objects=NAMES, locations=VOCAB, image_size=16, input_size=16)
    readings = [(False, 0.99), (True, 0.7), (True, DRAWER_SURE), (False, 0.6), (True, 0.7)]
    env = HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=16)
    try:
        world = PerceivedKitchenWorld(env, DrawerReadings(config, readings), score_with_oracle=False)  # type: ignore[arg-type]
        world.reset(seed=0)
        assert ["closed", "drawer"] in world.facts()
        unsure = world.facts()
        assert ["closed", "drawer"] in unsure and ["open", "drawer"] not in unsure
        assert world.trace[-1]["remembered"] == {"drawer": ["closed", "drawer"]}
        assert ["open", "drawer"] in world.facts()  # sure enough: believed, and remembered
        assert ["open", "drawer"] in world.facts()  # unsure "closed" gives way to the remembered "open"
        world.reset(seed=1)
        assert ["open", "drawer"] in world.facts()  # nothing remembered in a new scene: the best guess
    finally:
        env.close()


def test_an_unseen_unremembered_object_makes_the_plan_look_in_the_drawer() -> None:
    """Look before acting: an object nobody sees or remembers may be in the closed drawer, so open it first."""
    from agent.planner import GroundedPlanner
    from envs.state import OBJECT_IDS
    from perception.text import HashingTextEncoder

    planner = GroundedPlanner(HashingTextEncoder())
    seen = [["on", name, "table"] for name in ("green_block", "blue_block", "yellow_block", "mug")]
    facts = [*seen, ["unknown", "red_block"], ["gripper_empty"], ["closed", "drawer"]]
    plan = planner.plan("put the red block in the bowl", list(OBJECT_IDS), facts, None)
    assert [str(c) for c in plan.steps] == ["open(drawer)", "pick(red_block)", "place(bowl)"]
    assert any(note.startswith("look: red_block") for note in plan.trace.notes)
    answer = planner.plan("where is the red block?", list(OBJECT_IDS), facts, None).answer
    assert answer is not None and "cannot see" in answer and "may be in the closed drawer" in answer
    # the drawer already open: nothing to look into, the unseen block is assumed where unlocated objects are
    opened = [*seen, ["unknown", "red_block"], ["gripper_empty"], ["open", "drawer"]]
    assert [str(c) for c in planner.plan("put the red block in the bowl", list(OBJECT_IDS), opened, None).steps] == [
        "pick(red_block)", "place(bowl)"]
    # a block the scene does show is planned from the scene, unknowns elsewhere notwithstanding
    assert [str(c) for c in planner.plan("put the green block in the bowl", list(OBJECT_IDS), facts, None).steps] == [
        "pick(green_block)", "place(bowl)"]


def test_perception_video_panel_highlights_mismatches() -> None:
    from experiments.common.media import MISMATCH, MISSED, facts_panel

    views = [np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), 200, np.uint8)]
    true = [["in", "red_block", "bowl"], ["closed", "drawer"]]

    def has(panel: np.ndarray, colour: tuple[int, int, int]) -> bool:
        """Some text pixel in this hue (anti-aliasing blends text into the background, so compare directions)."""
        pixels = panel[:, 50:].reshape(-1, 3).astype(float) - (20, 20, 24)  # right of the camera views
        target = np.asarray(colour, float) - (20, 20, 24)
        bright = pixels[np.linalg.norm(pixels, axis=1) > 100]
        cosine = bright @ target / (np.linalg.norm(bright, axis=1) * np.linalg.norm(target))
        return bool((cosine > 0.995).any())

    agreeing = facts_panel(true, true, views, height=200)
    assert agreeing.shape == (200, 250, 3) and not has(agreeing, MISMATCH) and not has(agreeing, MISSED)
    wrong = facts_panel([["on", "red_block", "table"], ["closed", "drawer"]], true, views, height=200)
    assert has(wrong, MISMATCH) and has(wrong, MISSED)  # the false fact in red, the missed true one in orange


def test_place_after_a_perceived_pick_places_what_perception_says_is_held() -> None:
    """The object a place call moves is read from perception, not from the simulator's state."""
    from agent.skills import SkillCall
    from envs.household import HouseholdEnv
    from experiments.kitchen.perceived_world import PerceivedKitchenWorld
    from experiments.scene_estimation.labels import LOCATIONS as VOCAB
    from experiments.scene_estimation.labels import OBJECTS as NAMES

    config = EstimatorConfig(objects=NAMES, locations=VOCAB, image_size=16, input_size=16)
    estimator = ScriptedEstimates(config, [{"mug": "held"}], holding=[True])
    env = HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=16)
    try:
        world = PerceivedKitchenWorld(env, estimator, score_with_oracle=False)  # type: ignore[arg-type]
        world.reset(seed=0)
        assert env.scene_state().held is None  # the simulator's gripper is empty
        world.start_skill(SkillCall("place", ("bowl",)))
        assert env.task is not None and tuple(env.task.args) == ("mug", "bowl")
    finally:
        env.close()


def test_chain_summary_scores_chains_with_the_oracle_referee() -> None:
    from experiments.kitchen.chains import ChainResult, summarise

    def chain(seed: int, verdicts: list[tuple[bool, bool]]) -> ChainResult:
        result = ChainResult(seed)
        for believed, true in verdicts:
            result.tasks.append(type("Task", (), {"task": "open"})())
            result.successes.append(believed)
            result.verified.append(true)
            result.records.append({"success": believed, "oracle_success": true})
        return result

    summary = summarise([chain(0, [(True, True), (True, False), (True, True)]), chain(1, [(False, True)])], 3)
    assert summary["agent_completed_length"] == 1.5  # what the agent believed
    assert summary["average_completed_length"] == 1.0  # the result: the oracle accepts 1 in a row in each chain
    assert [row["success_rate"] for row in summary["positions"]] == [1.0, 0.0, 0.0]
    assert [row["success_rate"] for row in summary["agent_positions"]] == [0.5, 0.5, 0.5]
    assert summary["agent_verdicts"] == {"instructions": 4, "agree": 2, "false_success": 1, "false_failure": 1}
    assert summary["per_task"]["open"] == {"successes": 3, "attempts": 4, "rate": 0.75}


def test_a_place_is_judged_only_once_the_object_has_come_to_rest() -> None:
    from agent.skills import SkillCall
    from envs.household import HouseholdEnv
    from experiments.kitchen.perceived_world import SETTLE_DISTANCE, PerceivedKitchenWorld
    from experiments.scene_estimation.labels import LOCATIONS as VOCAB
    from experiments.scene_estimation.labels import OBJECTS as NAMES

    config = EstimatorConfig(objects=NAMES, locations=VOCAB, image_size=16, input_size=16)

    def scene(z: float) -> SceneEstimate:
        objects = {name: ObjectEstimate(name, "bowl" if name == "mug" else "table", 0.9, 0.9, (0.4, 0.1, z), "table")
                   for name in NAMES}
        return SceneEstimate(objects, False, 0.99, False, 0.99)

    env = HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=16)
    try:
        world = PerceivedKitchenWorld(env, ScriptedEstimates(config, [{"mug": "held"}], [True]),  # type: ignore[arg-type]
                                      score_with_oracle=False)
        world.reset(seed=0)
        world.start_skill(SkillCall("place", ("bowl",)))
        world._previous = scene(0.10)
        assert not world._settled(scene(0.10 - 3 * SETTLE_DISTANCE))  # still falling into the bowl
        world._previous = scene(0.02)
        assert world._settled(scene(0.02 + SETTLE_DISTANCE / 4))  # at rest
        world.start_skill(SkillCall("open", ("drawer",)))
        assert world._settled(scene(0.5))  # a drawer needs no settling
    finally:
        env.close()


def test_a_finer_front_camera_reaches_the_estimator_and_the_env() -> None:
    """front_image_size: the env renders the front camera finer than the wrist, and an estimator built for it reads
    those shapes (and refuses equal-sized cameras with a message naming both sizes)."""
    from envs.household import HouseholdEnv
    from experiments.kitchen.perceived_world import perceived_world

    env = HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=16, front_image_size=32)
    try:
        obs, _ = env.reset(seed=0)
        assert obs["rgb_front"].shape == (32, 32, 3) and obs["depth_front"].shape == (32, 32, 1)
        assert obs["rgb_wrist"].shape == (16, 16, 3)
        assert env.observation_space["rgb_front"].shape == (32, 32, 3)
        assert env.observation_space["depth_wrist"].shape == (16, 16, 1)
        config = EstimatorConfig(objects=OBJECTS, locations=LOCATIONS, image_size=16, front_image_size=32,
                                 input_size=16, width=4)
        estimator = SceneEstimator(config)
        assert set(estimator.estimate({k: obs[k] for k in SENSES}).objects) == set(OBJECTS)
        perceived_world(env, estimator)  # the sizes match: no error
        with pytest.raises(ValueError, match=r"rgb_front.*\(16, 16, 3\).*expects \(32, 32, 3\)"):
            estimator.estimate(observation(16))
        with pytest.raises(ValueError, match="front and wrist images of 16px and 16px, the env gives 32px and 16px"):
            perceived_world(env, SceneEstimator(tiny_config(16)))
    finally:
        env.close()
    with pytest.raises(ValueError, match="input_size must divide"):
        EstimatorConfig(objects=OBJECTS, locations=LOCATIONS, image_size=16, front_image_size=24, input_size=16)


def test_a_finer_image_is_averaged_down_for_a_coarser_policy() -> None:
    from agent.policy import fit_image, image_fits

    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2, :2] = [255, 0, 0]
    rgb[0, 2] = [100, 100, 100]
    small = fit_image(rgb, (2, 2, 3))
    assert small.dtype == np.uint8 and small.shape == (2, 2, 3)
    assert small[0, 0].tolist() == [255, 0, 0] and small[0, 1].tolist() == [25, 25, 25]
    depth = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    assert fit_image(depth, (2, 2, 1))[..., 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]
    assert image_fits((128, 128, 3), (64, 64, 3)) and not image_fits((96, 96, 3), (64, 64, 3))
    assert not image_fits((32, 32, 3), (64, 64, 3))
    with pytest.raises(ValueError, match=r"shape \[6, 6, 3\] cannot feed a policy input of shape \[4, 4, 3\]"):
        fit_image(np.zeros((6, 6, 3), np.uint8), (4, 4, 3))


def test_visibility_counts_front_pixels_at_the_wrist_cameras_resolution() -> None:
    from experiments.scene_estimation.training_common import visible_labels

    pixels = np.array([[[8, 0], [3, 0], [0, 4]]])  # front, wrist per object
    frames = {"pixels": pixels, "location": np.zeros((1, 3), int),
              "rgb_front": np.zeros((1, 32, 32, 3), np.uint8), "rgb_wrist": np.zeros((1, 16, 16, 3), np.uint8)}
    assert visible_labels(frames, 4, held_index=6).tolist() == [[False, False, True]]  # 8 front px at 2x = 2
    frames["rgb_front"] = np.zeros((1, 16, 16, 3), np.uint8)
    assert visible_labels(frames, 4, held_index=6).tolist() == [[True, False, True]]


@pytest.mark.parametrize("after_rest, placed", [("bowl", True), ("table", False)])
def test_a_place_is_looked_at_again_with_the_hand_raised(after_rest: str, placed: bool) -> None:
    """A place seen done is judged again once the hand has risen and the object rests; seen undone, it fails."""
    from agent.skills import SkillCall
    from envs.household import HouseholdEnv
    from experiments.kitchen.perceived_world import CONFIRM_STEPS, PerceivedKitchenWorld
    from experiments.kitchen.world import LOOK_HEIGHT
    from experiments.scene_estimation.labels import LOCATIONS as VOCAB
    from experiments.scene_estimation.labels import OBJECTS as NAMES

    config = EstimatorConfig(objects=NAMES, locations=VOCAB, image_size=16, input_size=16)
    # held at the start (two reads), in the bowl on the confirming steps, then `after_rest` for every later look
    scenes = [{"mug": "held"}] * 2 + [{"mug": "bowl"}] * CONFIRM_STEPS + [{"mug": after_rest}]
    holding = [True] * 2 + [False] * (CONFIRM_STEPS + 1)
    env = HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=16)
    try:
        world = PerceivedKitchenWorld(env, ScriptedEstimates(config, scenes, holding),  # type: ignore[arg-type]
                                      score_with_oracle=False)
        world.reset(seed=0)
        world.start_skill(SkillCall("place", ("bowl",)))
        hold_still = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)
        for _ in range(CONFIRM_STEPS - 1):
            assert world.step(hold_still)[2:4] == (False, False)
        obs, _, terminated, truncated, info = world.step(hold_still)
    finally:
        env.close()
    assert obs["proprio"][2] >= LOOK_HEIGHT - 0.01  # the hand rose out of the camera's way before looking
    assert (terminated, truncated) == (placed, not placed)
    assert ("failure_reason" in info) != placed and "is_success" not in info


def test_scene_frames_can_be_collected_with_the_learned_students(tmp_path: Path) -> None:
    """`collect-scenes --skills learned`: every skill is a shipped rgbd_touch student; a bad choice is refused."""
    from agent.skills import SkillCall
    from envs.household import HouseholdEnv
    from experiments.common.errors import InputError
    from experiments.kitchen.world import KitchenWorld
    from experiments.scene_estimation.data import SceneDataConfig, collect, learned_provider

    with pytest.raises(InputError, match="skills must be 'scripted' or 'learned', got 'experts'"):
        collect([0], tmp_path / "bad", SceneDataConfig(skills="experts"))
    assert not (tmp_path / "bad").exists()
    env = HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=64, front_image_size=128)
    try:
        provider = learned_provider(KitchenWorld(env))
        calls = [SkillCall("pick", ("red_block",)), SkillCall("place", ("bowl",)), SkillCall("open", ("drawer",)),
                 SkillCall("close", ("drawer",)), SkillCall("push", ("red_block", "left")),
                 SkillCall("reach", ("mug",))]
        assert all(provider.learned_policy(call) is not None for call in calls)
    finally:
        env.close()
    with pytest.raises(InputError):  # the students' cameras do not match a 32 px kitchen
        small = HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=32)
        try:
            learned_provider(KitchenWorld(small))
        finally:
            small.close()


@pytest.mark.parametrize("look_again", [True, False])
def test_the_oracle_world_judges_a_place_again_once_the_object_rests(monkeypatch: pytest.MonkeyPatch,
                                                                      look_again: bool) -> None:
    """A place the oracle calls done at impact but not once the object rests fails, unless judged at impact."""
    import envs.household as household
    import envs.tasks as tasks
    from agent.skills import SkillCall
    from experiments.kitchen.world import LOOK_HEIGHT, KitchenWorld

    env = household.HouseholdEnv(task="none")
    try:
        world = KitchenWorld(env, look_again=look_again)
        world.reset(seed=0)
        world.env.step(np.zeros(4, np.float32))
        monkeypatch.setattr(household, "check_success", lambda *_: True)  # "done" at the first step (impact)
        monkeypatch.setattr(tasks, "check_success", lambda *_: False)  # and gone once at rest
        world._last_picked = "red_block"
        world.start_skill(SkillCall("place", ("bowl",)))
        obs, _, terminated, truncated, info = world.step(np.array([0.0, 0.0, 0.0, 1.0], np.float32))
    finally:
        env.close()
    if look_again:
        assert (terminated, truncated) == (False, True) and not info["is_success"]
        assert info["failure_reason"] == "the placed object did not stay once it came to rest"
        assert obs["proprio"][2] >= LOOK_HEIGHT - 0.01  # the hand rose before the second judgement
    else:
        assert terminated and "failure_reason" not in info


def test_a_perceived_pick_counts_once_the_object_is_lifted_as_the_oracles_does() -> None:
    """Held is not enough: the hand (proprioception) must have raised the object `PICK_LIFT` above where it lay,
    as the env's pick asks; a pick that ended at the grasp handed the place students a block on the table."""
    from agent.skills import SkillCall
    from envs.tasks import PICK_LIFT
    from experiments.kitchen.perceived_world import PerceivedKitchenWorld
    from experiments.scene_estimation.labels import OBJECTS as NAMES

    def estimate(location: str, z: float, holding: bool) -> SceneEstimate:
        objects = {name: ObjectEstimate(name, location if name in ("red_block", "mug") else "table", 0.99, 0.99,
                                        (0.5, 0.0, z), "table") for name in NAMES}
        return SceneEstimate(objects, False, 0.99, holding, 0.99)

    world = object.__new__(PerceivedKitchenWorld)
    for name, lying, grasp_height in (("red_block", 0.02, 0.0), ("mug", 0.0, 0.032)):
        world._call = SkillCall("pick", (name,))
        world._start = estimate("table", lying, False)
        held = estimate("held", lying + 0.01, True)
        for lift, expected in ((0.0, False), (PICK_LIFT - 0.01, False), (PICK_LIFT + 0.01, True)):
            obs = {"proprio": np.array([0.5, 0.0, lying + grasp_height + lift], np.float32)}
            assert world._achieved(held, obs) is expected, (name, lift)
        obs = {"proprio": np.array([0.5, 0.0, 0.4], np.float32)}
        assert not world._achieved(estimate("table", lying, False), obs)  # lifted hand, nothing held
