"""Episodes for imitation: who acts (expert, student or a mixture) and the expert's label for every state.

The expert labelling every visited state is DAgger's relabelling step.

`SkillEnv` is `HouseholdEnv` (plain or chain-like starts) plus the `goal` observation: the env picks the task's
arguments (in chain mode, among those feasible where the sub-chain ended), then a sentence for them is drawn
(the agent's skill-call text with probability `skill_text_fraction`, else an instruction template) and
embedded from the run's `EmbeddingTable`, exactly as the PPO skills see it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from agent.perceived_state import without_yaw
from envs.chain_starts import run_skill
from envs.experts import LowReleaseExpert, ScriptedExpert, StatePlaceExpert, make_expert
from envs.tasks import TaskSpec, valid_arguments
from experiments.common.errors import InputError
from experiments.imitation.dataset import Episode
from experiments.imitation.learned_prefix import LearnedPrefixRunner, check_prefix
from experiments.training.language import EmbeddingTable, instruction_variants
from perception.layout import GOAL_KEY

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]
OBS_SETS = ("state", "rgbd_touch")


class SkillEnv:
    """One skill's episodes with the goal embedding added to the observation.

    Args:
        task: env task (reach, pick, place_in, place_on, push, open, close).
        obs_mode: "state" or "rgbd_touch".
        start: "reset" or "chain".
        table: embeddings of every sentence of the task.
        skill_text_fraction: share of episodes whose sentence is the agent's skill-call text.
        prefix: who runs a chain start's sub-chain (`experiments.imitation.learned_prefix.PREFIXES`): the
            scripted experts, the shipped learned skills, or "mixed" (even seeds scripted, odd seeds learned).
        front_image_size: the front camera's side when it differs from `image_size` (the scene estimator's).
        blind_yaw: read every object's yaw as 0 in the `objects` rows (state mode), as perceived rows have it.
    """

    def __init__(self, task: str, obs_mode: str, start: str, table: EmbeddingTable,
                 skill_text_fraction: float = 0.5, image_size: int = 64, prefix: str = "scripted",
                 front_image_size: int | None = None, blind_yaw: bool = False) -> None:
        from envs.household import HouseholdEnv

        if obs_mode not in OBS_SETS:
            raise InputError(f"unknown observation set {obs_mode!r}; expected one of: {', '.join(OBS_SETS)}")
        if blind_yaw and obs_mode != "state":
            raise InputError(f"blind yaw hides the yaw of the state rows; the {obs_mode!r} observations have none")
        check_prefix(prefix, start)
        self.blind_yaw = blind_yaw
        self.task = task
        self.env = HouseholdEnv(task=task, obs_mode=obs_mode, start=start, image_size=image_size,
                                front_image_size=front_image_size)
        self.prefix = prefix
        self._learned_prefix = LearnedPrefixRunner() if prefix != "scripted" else None
        self.table = table
        self.variants = instruction_variants(task)
        self.arguments = valid_arguments(task)
        self.skill_text_fraction = skill_text_fraction
        goal = spaces.Box(-1.0, 1.0, (table.dim,), np.float32)  # as perception.goal_wrapper declares it
        self.observation_space = spaces.Dict({**self.env.observation_space.spaces, GOAL_KEY: goal})
        self.action_space = self.env.action_space
        self._goal = np.zeros(table.dim, np.float32)

    def reset(self, seed: int, args: tuple[str, ...] | None = None,
              crowd: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset the env and draw and embed this episode's sentence.

        `args` names the task's arguments; `crowd` asks for a crowded chain start (`envs.chain_starts`).
        """
        options: dict[str, Any] = {"args": list(args)} if args is not None else {}
        if crowd:
            options["crowd"] = True
        if self._learned_prefix is not None:
            learned = self.prefix == "learned" or seed % 2 == 1
            self.env.prefix_runner = self._learned_prefix if learned else run_skill
        obs, info = self.env.reset(seed=seed, options=options)
        spec_args = tuple(info["task_args"])
        rows = self.variants[spec_args]
        rng = np.random.default_rng([seed, 0x7E47])
        variant = rows[-1] if rng.random() < self.skill_text_fraction else rows[int(rng.integers(len(rows) - 1))]
        self._goal = self.table.encode([variant.text])[0].astype(np.float32)
        info = {**info, "instruction": variant.text, "argument_index": self.arguments.index(spec_args)}
        return self._view(obs), info

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Step the env; the observation carries the episode's `goal` embedding."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._view(obs), reward, terminated, truncated, info

    def _view(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What the student reads: the env's observation (yaw-blind rows if asked) and the episode's goal."""
        if self.blind_yaw:
            obs = {**obs, "objects": without_yaw(obs["objects"])}
        return {**obs, GOAL_KEY: self._goal}

    def close(self) -> None:
        """Close the env's PyBullet client."""
        self.env.close()


LABELLERS = ("plain", "recovering", "careful", "nearest", "patient", "state", "local", "radial", "away", "lowrelease",
             "tightrelease", "column")
"""The expert that labels: the plain scripted expert; one that re-grasps an object the student dropped; one that
also re-grasps and never lets go far above the drop point (its "lower" phase ends on the state, not the clock);
one that re-grasps and puts an object down on the table at the free point nearest to it (not the farthest one, an
argmax over the whole table); one that does that and leaves every phase only on the state, never on the clock alone
(`envs.experts.ScriptedExpert`); or, for the places, one whose action depends on the state alone
(`envs.experts.StatePlaceExpert`; other skills get the recovering expert), or that one with its bowl and plate
drop points judged from what stands in the container alone (`local`), and that one putting an object down on the table
straight away from what it is over (`radial`), or with the bowl's and the plate's drop point turning continuously
away from what stands in them (`away`, `envs.experts._away_spot`); or, for the places, the recovering
expert that never labels "let go" with the object held more than 6 cm above its drop goal
(`envs.experts.LowReleaseExpert`), or 1 cm (`tightrelease`); or `local` letting go also in a column over and
under the drop point (`column`: `StatePlaceExpert(column_release=True)`)."""


def check_labeller(labeller: str) -> None:
    """Refuse a labeller name that is not one of `LABELLERS`, naming them."""
    if labeller not in LABELLERS:
        raise InputError(f"unknown labeller {labeller!r}; expected one of: {', '.join(LABELLERS)}")


def labelling_expert(task: TaskSpec, labeller: str) -> ScriptedExpert | StatePlaceExpert | LowReleaseExpert:
    """The scripted expert that labels a student's states, as `labeller` names it."""
    check_labeller(labeller)
    if labeller in ("state", "local", "radial", "away", "column") and task.name in ("place_in", "place_on"):
        return StatePlaceExpert(task, local_spots=labeller in ("local", "radial", "away", "column"),
                                radial_table_spot=labeller == "radial", away_spots=labeller == "away",
                                column_release=labeller == "column")
    if labeller == "lowrelease" and task.name in ("place_in", "place_on"):
        return LowReleaseExpert(task)
    if labeller == "tightrelease" and task.name in ("place_in", "place_on"):
        return LowReleaseExpert(task, high=LowReleaseExpert.TIGHT_HIGH)
    if labeller in ("state", "local", "radial", "away", "lowrelease", "tightrelease", "column"):
        return make_expert(task, recover=True)
    return make_expert(task, recover=labeller in ("recovering", "careful", "nearest", "patient"),
                       patient=labeller == "patient", nearest_table_spot=labeller in ("nearest", "patient"),
                       patient_phases=("lower",) if labeller == "careful" else ())


def rollout(env: SkillEnv, seed: int, student: Predict | None = None, beta: float = 1.0,
            args: tuple[str, ...] | None = None, labeller: str = "plain", crowd: bool = False) -> Episode:
    """One episode; the expert labels every visited state, whoever acts.

    At each step the expert's action (computed from the privileged scene state) is the label; the executed action
    is the expert's with probability `beta` (always when `student` is None), else the student's. With beta = 0
    this is DAgger's on-policy relabelling: the states are the student's, the labels the expert's. With `labeller`
    "recovering" (`envs.experts.ScriptedExpert(recover=True)`) a student's dropped object is labelled with a
    re-grasp; with "patient" the expert also never moves on from a phase because the student was slow (the plain
    expert's step budgets labelled "let go" over a student hovering high above its target; RESULTS.md); with
    "state" the places are labelled by `envs.experts.StatePlaceExpert`, which has no phases at all. `crowd`: the
    chain start puts another object in the place's target first (`envs.chain_starts`).
    """
    if not 0.0 <= beta <= 1.0:
        raise InputError(f"beta must be in [0, 1], got {beta}")
    check_labeller(labeller)  # before the env is reset
    obs, info = env.reset(seed, args, crowd)
    expert = labelling_expert(env.env.task, labeller)
    rng = np.random.default_rng([seed, 0xDA66E2])
    episode = Episode(seed=seed, argument_index=int(info["argument_index"]), task=str(info["task"]),
                      instruction=str(info["instruction"]))
    episode.add_observation(obs)
    while True:
        label = expert.act(info["scene_state"])
        use_expert = student is None or rng.random() < beta
        action = label if use_expert else np.clip(np.asarray(student(obs), np.float32).reshape(-1), -1.0, 1.0)
        obs, reward, terminated, truncated, info = env.step(action)
        episode.labels.append(np.asarray(label, np.float32))
        episode.executed.append(np.asarray(action, np.float32))
        episode.rewards.append(float(reward))
        episode.add_observation(obs)
        if terminated or truncated:
            episode.terminated, episode.truncated = bool(terminated), bool(truncated)
            episode.success = bool(info["is_success"])
            return episode
