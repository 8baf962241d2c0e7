"""envs writes the `objects` vector and agent reads it: both sides must agree on its layout.

agent may not import envs (docs/ARCHITECTURE.md), so each side states the layout itself; this test is
where the two statements meet.
"""

from __future__ import annotations

import numpy as np

from agent import policy_features
from envs.household import HouseholdEnv
from envs.observation import DRAWER_FEATURES, N_OBJECTS, OBJECT_FEATURES, OBS_MODES, object_features
from envs.state import RIGID_OBJECTS
from perception.layout import GOAL_KEY


def test_agent_reads_the_object_rows_envs_writes() -> None:
    assert policy_features.OBJECT_FEATURES == OBJECT_FEATURES
    assert policy_features.N_OBJECTS == N_OBJECTS == len(RIGID_OBJECTS)


def test_env_objects_vector_has_the_declared_layout() -> None:
    env = HouseholdEnv(task="pick", obs_mode="state")
    try:
        obs, _ = env.reset(seed=0)
        objects = obs[policy_features.OBJECTS_KEY]
        assert env.observation_space[policy_features.OBJECTS_KEY].shape == objects.shape
        assert objects.shape == (N_OBJECTS * OBJECT_FEATURES + DRAWER_FEATURES,)
        state = env.scene_state()
        np.testing.assert_array_equal(objects, object_features(state))
        rows = objects[: N_OBJECTS * OBJECT_FEATURES].reshape(N_OBJECTS, OBJECT_FEATURES)
        np.testing.assert_allclose(rows[:, :3], state.positions, atol=1e-6)  # each row starts with its position
    finally:
        env.close()


def test_one_definition_of_shared_keys() -> None:
    from agent import policy
    from experiments.training import config

    assert policy.GOAL_KEY is GOAL_KEY
    assert config.OBS_MODES is OBS_MODES
