"""Visuomotor skills (issue 14): shipped `rgbd_touch` policies see no privileged key, act in the loop with
`--skill-obs rgbd_touch`, and a policy whose observations the kitchen does not give is refused before acting."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from gymnasium import spaces

from agent.policy import VISUOMOTOR_DIR, find_cards, load_card_policy, read_observation_space
from experiments.cli import main
from experiments.common.errors import InputError
from experiments.kitchen.factory import AgentOptions, check_observations, visuomotor_front_size

SENSES = {"goal", "proprio", "touch", "rgb_front", "depth_front", "rgb_wrist", "depth_wrist"}
PRIVILEGED = {"objects"}


def test_shipped_visuomotor_policies_read_only_the_senses() -> None:
    """Every rgbd_touch card, cloned from pixels (open, close) or a state policy acting on perceived rows, reads
    the cameras, touch, proprioception and the goal: the composed policy's inputs, not the inner one's."""
    cards = find_cards(VISUOMOTOR_DIR)
    assert {"open", "close"} <= set(cards), "a visuomotor policy is missing from agent/skill_policies/rgbd_touch"
    assert len(cards) == len(list(VISUOMOTOR_DIR.glob("*.json")))
    for task, card in cards.items():
        assert card.meta["obs_mode"] == "rgbd_touch", task
        assert set(card.meta["observation_keys"]) == SENSES, task
        policy = load_card_policy(card)
        keys = set(policy.observation_space.spaces)
        assert keys == SENSES and not keys & PRIVILEGED, (task, sorted(keys))
        assert set(read_observation_space(card)) == SENSES, task
        assert card.path.stat().st_size < 5_500_000, f"{card.path.name} is too big to ship"
        perceived = "perceived_state" in card.meta
        if perceived:  # the evaluation on the card measured exactly the state policy it points at
            from experiments.imitation.perceived import file_sha256

            assert card.meta["state_policy_sha256"] == file_sha256(card.path), f"{task}: re-run perceive-skill"
        assert card.meta["train_command"].startswith("embodia dagger")
        assert ("embodia perceive-skill" in card.meta["train_command"]) if perceived else \
            ("--obs-mode rgbd_touch" in card.meta["train_command"])
        assert card.meta["eval"]["start"] == "chain" and card.meta["eval"]["episodes"] >= 100


def test_the_visuomotor_policies_open_and_close_the_drawer_in_the_loop(tmp_path: Path, capsys) -> None:
    """Seed 0: the shipped rgbd_touch policies open the drawer and close it again, from the cameras and touch."""
    out = tmp_path / "run"
    code = main(["run", "open the drawer and then close it", "--skills", "learned", "--skill-obs", "rgbd_touch",
                 "--seed", "0", "--out", str(out)])
    trace = json.loads((out / "episode.json").read_text())
    assert code == 0 and trace["success"], capsys.readouterr().out
    policies = {step["skill"]: step["policy"] for step in trace["steps"]}
    assert policies == {"open": "ppo:open", "close": "ppo:close"}
    assert ["closed", "drawer"] in trace["final_facts"]


def _space(**shapes: tuple[int, ...]) -> spaces.Dict:
    return spaces.Dict({k: spaces.Box(-np.inf, np.inf, shape, np.float32) for k, shape in shapes.items()})


def test_a_policy_reading_what_the_kitchen_does_not_give_is_refused() -> None:
    cards = find_cards(VISUOMOTOR_DIR)
    provider = SimpleNamespace(cards=cards)
    state_kitchen = _space(proprio=(21,), objects=(60,))
    with pytest.raises(InputError, match=r"missing .*rgb_front.*--skill-obs"):
        check_observations(provider, state_kitchen)
    small_cameras = _space(proprio=(21,), touch=(38,), rgb_front=(32, 32, 3), depth_front=(32, 32, 1),
                           rgb_wrist=(32, 32, 3), depth_wrist=(32, 32, 1))
    with pytest.raises(InputError, match="other shape"):
        check_observations(provider, small_cameras)
    shapes = {k: tuple(v) for k, v in json.loads(cards["close"].path.with_suffix(".json").read_text())[
        "architecture"]["observation_space"]["spaces"].items() for v in [v["shape"]]}
    front = visuomotor_front_size()  # the perceived-state skills' estimator reads a finer front camera
    assert front == 128
    shapes.update(rgb_front=(front, front, 3), depth_front=(front, front, 1))
    check_observations(provider, _space(**{k: v for k, v in shapes.items() if k != "goal"}))  # the right kitchen


def test_an_unknown_skill_observation_set_is_refused(capsys) -> None:
    with pytest.raises(InputError, match="unknown skill observation set 'pixels'"):
        AgentOptions(skill_obs="pixels")
    assert main(["run", "close the drawer", "--skill-obs", "pixels"]) == 2
    assert "--skill-obs" in capsys.readouterr().err


def test_a_perceiving_agent_acts_with_visuomotor_skills_unless_told_otherwise(capsys) -> None:
    assert AgentOptions().skill_observations == "state"
    assert AgentOptions(perception="learned").skill_observations == "rgbd_touch"
    assert AgentOptions(perception="learned", skill_obs="state").skill_observations == "state"
    # the perceived kitchen renders cameras and touch only: state policies cannot act there, and say so
    assert main(["run", "close the drawer", "--perception", "learned", "--skills", "learned",
                 "--skill-obs", "state"]) == 2
    err = capsys.readouterr().err
    assert "missing ['objects']" in err and "--skill-obs" in err


def test_perceived_state_skills_pick_and_place_in_the_loop(tmp_path: Path, capsys) -> None:
    """Seed 0: the shipped perceived-state pick and place put the red block on the plate, acting on what the scene
    estimator sees (the kitchen gives no object rows: rgbd_touch only)."""
    cards = find_cards(VISUOMOTOR_DIR)
    assert {"pick", "place_on"} <= {task for task, card in cards.items() if "perceived_state" in card.meta}
    out = tmp_path / "run"
    code = main(["run", "put the red block on the plate", "--skills", "learned", "--skill-obs", "rgbd_touch",
                 "--seed", "0", "--out", str(out)])
    trace = json.loads((out / "episode.json").read_text())
    assert code == 0 and trace["success"], capsys.readouterr().out
    assert [step["policy"] for step in trace["steps"]] == ["ppo:pick", "ppo:place_on"]
    assert ["on", "red_block", "plate"] in trace["final_facts"]
