"""`GoalEmbeddingWrapper`: adds the instruction's text embedding to every observation as `goal`.

Training, evaluation and the agent loop all go through this one wrapper, so a policy always sees the
goal the same way. The instruction is read from `info["instruction"]` at reset and after each step
(it changes when the task is switched mid-episode); embeddings are cached per instruction.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from perception.layout import GOAL_KEY
from perception.text import TextEncoder

INSTRUCTION_KEY = "instruction"


class GoalEmbeddingWrapper(gym.ObservationWrapper):
    """Extend a Dict observation with `goal` = encoder.encode([instruction])[0].

    Example:
        >>> env = GoalEmbeddingWrapper(gym.make("Embodia/Kitchen-v0"), MiniLMEncoder())  # doctest: +SKIP
        >>> obs, info = env.reset(seed=0)  # doctest: +SKIP
        >>> obs["goal"].shape  # doctest: +SKIP
        (384,)
    """

    def __init__(self, env: gym.Env, encoder: TextEncoder) -> None:
        super().__init__(env)
        base = env.observation_space
        if not isinstance(base, spaces.Dict):
            raise TypeError(f"GoalEmbeddingWrapper needs a Dict observation space, got {type(base).__name__}")
        if GOAL_KEY in base.spaces:
            raise ValueError(f"the observation space already has a {GOAL_KEY!r} key; wrap the env only once")
        self.encoder = encoder
        goal_space = spaces.Box(-1.0, 1.0, shape=(encoder.dim,), dtype=np.float32)
        self.observation_space = spaces.Dict({**base.spaces, GOAL_KEY: goal_space})
        self._cache: dict[str, np.ndarray] = {}
        self.instruction: str | None = None
        self._goal: np.ndarray | None = None

    def embed(self, instruction: str) -> np.ndarray:
        """The (cached) embedding of one instruction."""
        if not isinstance(instruction, str):
            raise TypeError(f"instruction must be a str, got {type(instruction).__name__}")
        if instruction not in self._cache:
            vector = np.asarray(self.encoder.encode([instruction])[0], dtype=np.float32)
            if vector.shape != (self.encoder.dim,):
                raise ValueError(f"encoder returned shape {vector.shape}, expected ({self.encoder.dim},)")
            self._cache[instruction] = vector
        return self._cache[instruction]

    def set_instruction(self, instruction: str) -> None:
        """Use `instruction` for the goal from now on (the agent loop calls this between skills)."""
        self._goal = self.embed(instruction)
        self.instruction = instruction

    def set_task(self, *args: Any, **kwargs: Any) -> str:
        """Forward to the env's `set_task` and switch the goal to the instruction it returns."""
        setter = getattr(self.env.unwrapped, "set_task", None)
        if setter is None:
            raise TypeError(f"{type(self.env.unwrapped).__name__} has no set_task method")
        instruction = setter(*args, **kwargs)
        self.set_instruction(instruction)
        return instruction

    def _update_from_info(self, info: dict[str, Any], required: bool) -> None:
        instruction = info.get(INSTRUCTION_KEY)
        if instruction is None:
            if required:
                raise KeyError(f"the env's reset info has no {INSTRUCTION_KEY!r}; keys present: {sorted(info)}")
            return
        if instruction != self.instruction:
            self.set_instruction(instruction)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset the env and embed its instruction; KeyError when the reset info carries none."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._update_from_info(info, required=True)
        return self.observation(obs), info

    def step(self, action):
        """Step the env; an instruction in `info` that differs from the current one replaces the goal."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._update_from_info(info, required=False)
        return self.observation(obs), reward, terminated, truncated, info

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        """The observation with the current goal embedding added; RuntimeError before the first reset."""
        if self._goal is None:
            raise RuntimeError("no instruction yet: call reset() before step()")
        return {**observation, GOAL_KEY: self._goal.copy()}
