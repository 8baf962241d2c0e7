"""SayCan affordances from the shipped reach policy's critic, in the real kitchen.

The critic was trained on a potential-shaped reward, so its raw value grows with the distance still to
cover; corrected by the shaping potential and calibrated by the card, it must instead fall with distance
(a farther target takes longer to reach), and only the next step in the scene as it is gets scored.
"""

from __future__ import annotations

import numpy as np
import pytest

from agent.policy import DEFAULT_DIR, LearnedSkillProvider, LearnedValueAffordance, find_cards
from agent.skills import SkillCall
from agent.symbolic import SymbolicState
from envs.household import HouseholdEnv
from envs.predicates import grasp_point
from envs.state import MOVABLE
from experiments.kitchen.world import KitchenWorld, ScriptedProvider


@pytest.fixture(scope="module")
def kitchen():
    assert "reach" in find_cards(DEFAULT_DIR), "the shipped reach policy is missing from agent/skill_policies"
    env = HouseholdEnv(task="none")
    world = KitchenWorld(env)
    provider = LearnedSkillProvider(fallback=ScriptedProvider(world).policy_for, mode="learned")
    yield env, world, provider, LearnedValueAffordance(provider, potential=world.shaping_potential)
    env.close()


def _observe(world: KitchenWorld, affordance: LearnedValueAffordance, seed: int) -> SymbolicState:
    world.reset(seed=seed)
    affordance.observe(world.observation(), world.objects(), world.facts())
    return SymbolicState.from_facts(world.facts(), world.objects())


def test_affordance_falls_with_the_distance_to_the_target(kitchen) -> None:
    env, world, _, affordance = kitchen
    distances, scores = [], []
    for seed in range(4):
        state = _observe(world, affordance, seed)
        scene = env.scene_state()
        for name in MOVABLE:
            distances.append(float(np.linalg.norm(scene.ee_position - grasp_point(scene, name))))
            scores.append(affordance.affordance(SkillCall("reach", (name,)), state))
    assert all(0.0 < s <= 1.0 for s in scores)
    assert len(set(np.round(scores, 3))) > 5, "the critic must tell the calls apart"
    ranks = np.argsort(np.argsort(distances)), np.argsort(np.argsort(scores))
    spearman = float(np.corrcoef(*ranks)[0, 1])
    assert spearman < -0.5, f"affordance should fall with distance, rank correlation {spearman:.2f}"


def test_only_the_next_step_in_the_observed_scene_is_scored(kitchen) -> None:
    _, world, provider, affordance = kitchen
    state = _observe(world, affordance, 0)
    call = SkillCall("reach", ("red_block",))
    assert affordance.affordance(call, state) < 1.0 or affordance.affordance(SkillCall("reach", ("mug",)), state) < 1.0
    holding = SymbolicState(state.objects, tuple(x for x in state.locations if x[0] != "red_block"), "red_block")
    assert affordance.affordance(call, holding) == 1.0  # a hypothetical state later in a plan
    assert affordance.affordance(SkillCall("place", ("bowl",)), state) == 1.0
    assert affordance.affordance(SkillCall("pick", ("red_block",)), state) == 1.0 or "pick" in provider.cards


def test_arguments_the_policy_never_saw_go_to_the_scripted_expert(kitchen) -> None:
    _, world, provider, affordance = kitchen
    state = _observe(world, affordance, 1)
    card, reason = provider.choice(SkillCall("reach", ("bowl",)))
    assert card is None and "never trained on (bowl)" in reason
    assert affordance.affordance(SkillCall("reach", ("bowl",)), state) == 1.0
    assert provider.choice(SkillCall("reach", ("mug",)))[0] is not None
