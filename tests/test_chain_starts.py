"""Chain-like start states (envs/chain_starts.py): seeded, reproducible, feasible, plain reset untouched."""

from __future__ import annotations

import numpy as np
import pytest

from envs import predicates as pred
from envs.chain_starts import feasible_arguments
from envs.household import HouseholdEnv
from envs.state import BLOCKS


def _obs_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_same_seed_gives_the_same_chain_start_bit_for_bit() -> None:
    one, two = HouseholdEnv(task="any", start="chain"), HouseholdEnv(task="any", start="chain")
    try:
        for seed in (3, 11):
            obs_a, info_a = one.reset(seed=seed)
            obs_b, info_b = two.reset(seed=seed)
            assert _obs_equal(obs_a, obs_b)
            assert info_a["chain_start"] == info_b["chain_start"] and info_a["task"] == info_b["task"]
            assert info_a["scene_state"] == info_b["scene_state"]
            action = np.array([0.3, -0.2, 0.1, 1.0], np.float32)
            for _ in range(5):
                step_a, step_b = one.step(action), two.step(action)
                assert _obs_equal(step_a[0], step_b[0]) and step_a[1] == step_b[1]
    finally:
        one.close()
        two.close()


def test_plain_reset_is_unchanged_by_the_start_option() -> None:
    plain, chained = HouseholdEnv(task="pick"), HouseholdEnv(task="pick", start="chain")
    try:
        obs_a, info_a = plain.reset(seed=5)
        obs_b, info_b = chained.reset(seed=5, options={"start": "reset"})
        assert _obs_equal(obs_a, obs_b) and info_a["task"] == info_b["task"]
        assert "chain_start" not in info_a and "chain_start" not in info_b
    finally:
        plain.close()
        chained.close()


@pytest.mark.parametrize("task", ["place_in", "place_on", "open", "close", "push"])
def test_the_task_is_feasible_where_the_chain_start_leaves_the_scene(task: str) -> None:
    env = HouseholdEnv(task=task, start="chain")
    try:
        for seed in range(3):
            _, info = env.reset(seed=seed)
            state, spec = info["scene_state"], env.task
            assert tuple(spec.args) in feasible_arguments(task, state) or info["chain_start"]["fallback"]
            if task.startswith("place"):
                assert pred.is_holding(state, spec.args[0])
            if task == "open":
                assert pred.drawer_closed(state)
            if task == "close":
                assert pred.drawer_open(state)
            assert not info["is_success"]
    finally:
        env.close()


def test_named_arguments_are_kept_and_unknown_start_modes_refused() -> None:
    env = HouseholdEnv(task="place_in", start="chain")
    try:
        _, info = env.reset(seed=1, options={"args": ["mug", "drawer"]})
        assert info["task"] == "place_in(mug, drawer)" and info["scene_state"].held == "mug"
        assert pred.drawer_open(info["scene_state"])
        with pytest.raises(ValueError, match="unknown start mode 'middle'"):
            env.reset(seed=1, options={"start": "middle"})
    finally:
        env.close()
    with pytest.raises(ValueError, match="expected one of: reset, chain"):
        HouseholdEnv(start="middle")


def test_a_prefix_runner_runs_every_skill_before_the_task() -> None:
    from envs.chain_starts import run_skill

    calls: list[str] = []

    def recording(env, spec):
        calls.append(str(spec))
        return run_skill(env, spec)

    env = HouseholdEnv(task="place_on", start="chain", prefix_runner=recording)
    try:
        for seed in range(3):
            calls.clear()
            _, info = env.reset(seed=seed)
            executed = [line.split(": ")[0] for line in info["chain_start"]["prefix"]]
            if not info["chain_start"]["fallback"]:
                assert calls[-len(executed):] == executed  # the last attempt's skills, setup pick included
            assert any(c.startswith("pick(") for c in calls)
    finally:
        env.close()


def _occupied(state, target: str, name: str) -> list[str]:
    return [f[1] for f in pred.symbolic_facts(state)
            if len(f) == 3 and f[0] in ("in", "on") and f[2] == target and f[1] != name]


@pytest.mark.parametrize(("task", "args"), [("place_in", ["red_block", "bowl"]), ("place_on", ["mug", "plate"]),
                                            ("place_in", ["green_block", "drawer"])])
def test_a_crowded_start_puts_another_object_in_the_target_first_and_is_reproducible(task: str,
                                                                                      args: list[str]) -> None:
    one, two = HouseholdEnv(task=task, start="chain"), HouseholdEnv(task=task, start="chain")
    try:
        for seed in (2, 9):
            obs_a, info_a = one.reset(seed=seed, options={"args": args, "crowd": True})
            obs_b, info_b = two.reset(seed=seed, options={"args": args, "crowd": True})
            assert _obs_equal(obs_a, obs_b) and info_a["chain_start"] == info_b["chain_start"]
            state = info_a["scene_state"]
            assert state.held == args[0] and not info_a["chain_start"]["fallback"]
            assert _occupied(state, args[1], args[0])  # something is there before the task starts
            crowded_with = info_a["chain_start"]["crowded_with"]
            assert crowded_with is None or crowded_with in _occupied(state, args[1], args[0])
            plain = one.reset(seed=seed, options={"args": args})[1]
            assert plain["chain_start"]["crowded_with"] is None
    finally:
        one.close()
        two.close()


def _over(state, name: str, support: str) -> bool:
    from envs.scene import SPECS

    return bool(np.linalg.norm((state.position(name) - state.position(support))[:2]) < SPECS[support].footprint)


def test_a_crowded_start_without_arguments_draws_a_crowdable_target() -> None:
    env = HouseholdEnv(task="place_on", start="chain")
    try:
        targets = set()
        for seed in range(6):
            _, info = env.reset(seed=seed, options={"crowd": True})
            name, target = env.task.args
            state, support = info["scene_state"], info["chain_start"]["crowded_with"]
            targets.add(target)
            assert state.held == name
            if target == "plate":
                assert _occupied(state, target, name)
            else:
                assert target in ("table", *BLOCKS)
                if support is not None:
                    assert support != target and _over(state, name, support)  # taken off what it was stood on
        assert "plate" in targets and "table" in targets and targets & set(BLOCKS)
    finally:
        env.close()


@pytest.mark.parametrize("target", ["table", "red_block"])
def test_a_crowded_table_or_stack_place_starts_with_the_object_taken_off_a_support_and_is_reproducible(
        target: str) -> None:
    """The hard case of the table and of a stack: the object held over the bowl, the plate or a block it was just
    lifted from (never the block it is to go on)."""
    one, two = HouseholdEnv(task="place_on", start="chain"), HouseholdEnv(task="place_on", start="chain")
    try:
        supports = []
        for seed in (1, 4, 7):
            args = ["yellow_block", target]
            obs_a, info_a = one.reset(seed=seed, options={"args": args, "crowd": True})
            obs_b, info_b = two.reset(seed=seed, options={"args": args, "crowd": True})
            assert _obs_equal(obs_a, obs_b) and info_a["chain_start"] == info_b["chain_start"]
            state, support = info_a["scene_state"], info_a["chain_start"]["crowded_with"]
            assert state.held == "yellow_block" and not info_a["chain_start"]["fallback"]
            if support is None:  # the prefix had already stood it on something: the pick before the task took it
                assert any(line.startswith("pick(yellow_block)") for line in info_a["chain_start"]["prefix"])
            else:
                assert support in ("bowl", "plate", "red_block", "green_block", "blue_block") and support != target
                assert info_a["chain_start"]["prefix"][-1] == "pick(yellow_block): ok"
                assert _over(state, "yellow_block", support)
                supports.append(support)
        assert supports, "no start put the block on a support"
    finally:
        one.close()
        two.close()


def test_crowded_starts_are_refused_where_they_cannot_apply() -> None:
    from envs.errors import InputError

    env = HouseholdEnv(task="place_on", start="chain")
    try:
        pick = HouseholdEnv(task="pick", start="chain")
        try:
            with pytest.raises(InputError, match="a crowded start needs a place into the bowl, the drawer or onto"):
                pick.reset(seed=0, options={"args": ["red_block"], "crowd": True})
        finally:
            pick.close()
        with pytest.raises(InputError, match="true only with chain starts; got True with 'reset' starts"):
            env.reset(seed=0, options={"start": "reset", "crowd": True})
        with pytest.raises(InputError, match="must be true or false"):
            env.reset(seed=0, options={"crowd": "yes"})
    finally:
        env.close()
