"""The language side of training: every phrasing of a task, their cached embeddings, and the episode sampler.

One policy covers all arguments of a task (which block, which direction, which container), so each episode
draws the arguments uniformly and then a sentence for them: one of the env's instruction templates with
random synonyms, or (a configurable share of the time) the exact text the agent's planner will use for that
skill call, so a shipped policy understands the agent as well as people. Sentences are embedded once, up
front, into an `EmbeddingTable` that env workers receive instead of the text model.
"""

from __future__ import annotations

import itertools
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agent.policy import skill_goal_text
from envs.experts import make_expert
from envs.instructions import DIRECTION_PHRASES, OBJECT_PHRASES, TEMPLATES
from envs.tasks import TaskSpec, valid_arguments
from experiments.common.errors import InputError, UnknownNameError
from experiments.common.io import atomic_write
from perception.text import TextEncoder

SKILL_CALL_TEMPLATE = "<skill call>"
PLACE_TASKS = ("place_in", "place_on")
SLIM_INFO_DROP = ("scene_state", "scene_features", "facts")


@dataclass(frozen=True)
class InstructionVariant:
    """One sentence for one argument tuple, and the template that produced it."""

    text: str
    template: str
    args: tuple[str, ...]


def _phrase_options(task: str, args: tuple[str, ...]) -> list[dict[str, str]]:
    """Every assignment of phrases to the template slots {x}, {y}, {d} for these arguments."""
    if task == "push":
        slots = {"x": OBJECT_PHRASES[args[0]], "d": DIRECTION_PHRASES[args[1]]}
    elif task in ("reach", "pick"):
        slots = {"x": OBJECT_PHRASES[args[0]]}
    elif task in PLACE_TASKS:
        slots = {"x": OBJECT_PHRASES[args[0]], "y": OBJECT_PHRASES[args[1]]}
    else:
        slots = {}
    keys = list(slots)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(slots[k] for k in keys))]


def instruction_variants(task: str) -> dict[tuple[str, ...], list[InstructionVariant]]:
    """All sentences per argument tuple: every template × every synonym, plus the skill-call text."""
    variants: dict[tuple[str, ...], list[InstructionVariant]] = {}
    for args in valid_arguments(task):
        rows = [InstructionVariant(template.format(**phrases), template, args)
                for template in TEMPLATES[task] for phrases in _phrase_options(task, args)]
        rows.append(InstructionVariant(skill_goal_text(task, args), SKILL_CALL_TEMPLATE, args))
        variants[args] = rows
    return variants


def all_texts(task: str) -> list[str]:
    """Every distinct sentence the task's episodes can carry (what the embedding table must hold)."""
    texts = (v.text for rows in instruction_variants(task).values() for v in rows)
    return list(dict.fromkeys(texts))


class EmbeddingTable:
    """A `TextEncoder` over a fixed set of precomputed sentence embeddings (picklable, model-free)."""

    def __init__(self, texts: Sequence[str], vectors: np.ndarray, source: str) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(f"need one vector per text: {len(texts)} texts, vectors of shape {vectors.shape}")
        self._index = {text: row for row, text in enumerate(texts)}
        self._vectors = vectors
        self.source = source

    @classmethod
    def build(cls, encoder: TextEncoder, texts: Sequence[str], source: str) -> EmbeddingTable:
        """A table holding `encoder`'s embeddings of `texts`, so training envs need no model at run time."""
        return cls(list(texts), encoder.encode(list(texts)), source)

    @property
    def dim(self) -> int:
        """Length of each embedding vector."""
        return int(self._vectors.shape[1])

    @property
    def texts(self) -> list[str]:
        """The sentences the table can encode, in table order."""
        return list(self._index)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts`, one row per sentence (float32, a copy the caller may modify).

        Raises TypeError for a bare string (it would otherwise be read as characters) and KeyError for a sentence the
        table does not hold: an unseen instruction must fail loudly, not get a made-up vector.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, got a single str; wrap it in a list")
        missing = [t for t in texts if t not in self._index]
        if missing:
            raise UnknownNameError(f"sentences not in the embedding table ({self.source}): {missing[:3]}; "
                           f"the table holds {len(self._index)} sentences of this task")
        return self._vectors[[self._index[t] for t in texts]].copy()

    def save(self, path: str | Path) -> Path:
        """Write the table as plain arrays (texts as a fixed-width unicode array): a file that holds no code."""
        texts = np.array(self.texts, dtype=np.str_)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, texts=texts, vectors=self._vectors, source=np.array(self.source, dtype=np.str_))

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingTable:
        """Read a table written by `save`, without unpickling anything (`allow_pickle=False`).

        Raises:
            FileNotFoundError: there is no file at `path`.
            ValueError: the file is damaged, is not a table, or was written by an older version that
                stored the texts as pickled objects (such a file is not read: it could run code).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no embedding table at {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                texts, vectors, source = data["texts"], data["vectors"], data["source"]
        except ValueError as error:
            if "Object arrays" in str(error):
                raise InputError(f"{path} holds pickled objects (an embedding table written by an older version "
                                 f"of embodia, or a planted file); it is not read because loading it could run "
                                 f"code: delete it, and `embodia train --resume` recomputes the table") from error
            raise InputError(f"{path} is not a readable embedding table: {error}") from error
        except (OSError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise InputError(f"{path} is not a readable embedding table: {error}") from error
        if texts.dtype.kind != "U" or texts.ndim != 1 or source.dtype.kind != "U" or vectors.dtype.kind != "f":
            raise InputError(f"{path} is not an embedding table: texts {texts.dtype}{texts.shape}, vectors "
                             f"{vectors.dtype}, source {source.dtype}; expected unicode texts and float vectors")
        return cls([str(t) for t in texts], vectors, str(source))


class LanguageTaskWrapper(gym.Wrapper):
    """Per episode: uniform arguments, then a sentence for them; optionally start place tasks mid-grasp.

    `reset(options={"args": (...), "variant": InstructionVariant})` forces a choice (evaluation does).
    The chosen template and arguments come back in `info["instruction_template"]` / `info["task_args"]`.

    Args:
        env: a `HouseholdEnv` (or a wrapper of one).
        task: the task every episode runs.
        skill_text_fraction: share of episodes using the agent's skill-call sentence.
        start_held_fraction: place tasks only: share of episodes that begin with the object grasped.
        slim_info: drop the heavy ground-truth info keys (worth it when infos cross a process pipe).
    """

    def __init__(self, env: gym.Env, task: str, skill_text_fraction: float = 0.0,
                 start_held_fraction: float = 0.0, slim_info: bool = False) -> None:
        super().__init__(env)
        self.task = task
        self.variants = instruction_variants(task)
        self.arguments = list(self.variants)
        self.skill_text_fraction = skill_text_fraction
        self.start_held_fraction = start_held_fraction if task in PLACE_TASKS else 0.0
        self.slim_info = slim_info
        self._rng = np.random.default_rng()

    def choose(self, args: tuple[str, ...] | None = None) -> InstructionVariant:
        """Draw an instruction variant (for `args`, or for uniformly drawn arguments)."""
        if args is None:
            args = self.arguments[int(self._rng.integers(len(self.arguments)))]
        rows = self.variants[tuple(args)]
        if self._rng.random() < self.skill_text_fraction:
            return rows[-1]
        return rows[int(self._rng.integers(len(rows) - 1))]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode on this wrapper's task with a freshly chosen argument tuple and sentence.

        `seed` also reseeds the wrapper's own choices, so the same seed gives the same instruction.
        """
        if seed is not None:
            self._rng = np.random.default_rng([seed, 0x5EED])
        options = dict(options or {})
        variant = options.pop("variant", None) or self.choose(options.pop("args", None))
        start_held = self._rng.random() < self.start_held_fraction
        obs, info = self.env.reset(seed=seed, options={**options, "task": self.task, "args": list(variant.args),
                                                       "instruction": variant.text})
        if start_held:
            obs, info = self._grasp_first(variant, info)
        info["instruction_template"] = variant.template
        return obs, self._slim(info)

    def step(self, action):
        """Step the env, trimming `info` to the fields training logs when `slim_info` is set."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._slim(info)

    def _grasp_first(self, variant: InstructionVariant, info: dict[str, Any]):
        """Run the scripted pick until the object is lifted, then start the place task from there."""
        name = variant.args[0]
        expert = make_expert(TaskSpec("pick", (name,)))
        state = info["scene_state"]
        for _ in range(TaskSpec("pick", (name,)).horizon):
            if expert.done:
                break
            _, _, _, _, step_info = self.env.step(expert.act(state))
            state = step_info["scene_state"]
        base = self.env.unwrapped
        base.set_task(self.task, variant.args, instruction=variant.text)
        return base.observation(), {**info, "scene_state": base.scene_state(), "is_success": False}

    def _slim(self, info: dict[str, Any]) -> dict[str, Any]:
        if not self.slim_info:
            return info
        return {k: v for k, v in info.items() if k not in SLIM_INFO_DROP}


APPROACH_TASKS = ("reach", "pick", "place_in", "place_on")
APPROACH_HOVER = 0.08
"""Height (m) above the grasp point that the approach potential asks for while still far away."""


def approach_potential(state: Any, name: str) -> float:
    """Minus the distance to a funnel above `name`: hover while far, descend while closing in.

    Going straight for a block's centre drags the open fingers into it (or its neighbours) and shoves it
    away; the funnel makes "above it, then down" the way uphill, as the scripted experts move.
    """
    from envs.predicates import grasp_point

    offset = state.ee_position - grasp_point(state, name)
    horizontal = float(np.hypot(offset[0], offset[1]))
    return -(horizontal + abs(float(offset[2]) - min(APPROACH_HOVER, horizontal)))


def shaping_potential(spec: Any, start: Any, state: Any, scale: float, approach: float) -> float:
    """Φ of `ProgressShaping`: `scale` × the task's dense reward term + `approach` × the approach funnel.

    A critic trained on the shaped reward estimates V(s) − Φ(s); adding Φ(s) back gives the value of the
    unshaped task, which is what an affordance should compare across calls (`agent.policy`).
    """
    from envs.tasks import dense_reward

    value = scale * float(dense_reward(spec, start, state)) if scale else 0.0
    name = spec.args[0] if spec.name in APPROACH_TASKS else None
    if approach and name is not None and state.held != name:
        value += approach * approach_potential(state, name)
    return value


class ProgressShaping(gym.Wrapper):
    """Training-only, potential-based reward shaping: add Φ(s') − Φ(s) to the env's reward.

    Φ = `scale` × the task's dense reward term (minus a distance to the goal) + `approach` × the approach
    funnel towards the task's object while it is not held (reach, pick, place). The change of a distance per
    step says directly whether the last action helped, a clearer signal for PPO than the distance itself;
    being potential-based, the shaping leaves the optimal behaviour unchanged. Success and evaluation are
    untouched. Needs `reward_type="dense"`.
    """

    def __init__(self, env: gym.Env, scale: float, approach: float = 0.0) -> None:
        super().__init__(env)
        self.scale, self.approach = scale, approach
        self._potential = 0.0

    def potential(self) -> float:
        """Φ of the current scene: the shaping potential the next reward difference is taken against."""
        base = self.env.unwrapped
        return shaping_potential(base.task, base.start_state, base.scene_state(), self.scale, self.approach)

    def reset(self, **kwargs: Any):
        """Reset the env and remember the start state's potential, so the first step's shaping is a difference."""
        obs, info = self.env.reset(**kwargs)
        self._potential = self.potential()
        return obs, info

    def step(self, action):
        """Step the env and add the change in Φ to its reward; termination and `info` pass through unchanged."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        potential = self.potential()
        shaped = float(reward) + potential - self._potential
        self._potential = potential
        return obs, shaped, terminated, truncated, info
