"""`FrameSet`: observations recorded from the world, each with the facts that were true at the time.

It is the dataset of perception's grounding: collected by `experiments/kitchen/perception_data.py` (the only
place that knows the env), consumed here by alignment training, evaluation and embedding export.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perception.atomic import atomic_write
from perception.statements import Fact, as_fact, is_grasping

_OBS_PREFIX = "obs__"


@dataclass
class FrameSet:
    """Stacked observations (one row per frame) with per-frame facts and the episode seed they came from."""

    obs: dict[str, np.ndarray]
    facts: list[list[Fact]]
    episode: np.ndarray
    task: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.facts)
        self.facts = [[as_fact(f) for f in frame] for frame in self.facts]
        self.episode = np.asarray(self.episode, dtype=np.int64)
        if not self.task:
            self.task = [""] * n
        sizes = {key: len(value) for key, value in self.obs.items()}
        if len(self.episode) != n or len(self.task) != n or any(size != n for size in sizes.values()):
            raise ValueError(
                f"frame set is ragged: {n} fact lists, {len(self.episode)} episode ids, {len(self.task)} tasks, "
                f"observation rows {sizes}"
            )

    def __len__(self) -> int:
        return len(self.facts)

    @property
    def grasped(self) -> np.ndarray:
        """Per frame: does the gripper hold something (the label of grasp detection)."""
        return np.array([is_grasping(frame) for frame in self.facts], dtype=bool)

    def subset(self, index: Sequence[int] | np.ndarray) -> FrameSet:
        """The frames at `index`, in that order."""
        index = np.asarray(index, dtype=np.int64)
        return FrameSet(
            {key: value[index] for key, value in self.obs.items()},
            [self.facts[i] for i in index],
            self.episode[index],
            [self.task[i] for i in index],
        )

    @staticmethod
    def concat(parts: Sequence[FrameSet]) -> FrameSet:
        """Join frame sets with the same observation keys."""
        if not parts:
            raise ValueError("concat needs at least one frame set")
        keys = set(parts[0].obs)
        for part in parts[1:]:
            if set(part.obs) != keys:
                raise ValueError(f"observation keys differ: {sorted(keys)} vs {sorted(part.obs)}")
        return FrameSet(
            {key: np.concatenate([p.obs[key] for p in parts]) for key in sorted(keys)},
            [frame for p in parts for frame in p.facts],
            np.concatenate([p.episode for p in parts]),
            [t for p in parts for t in p.task],
        )

    def save(self, path: str | Path) -> Path:
        """Write to a compressed .npz file atomically (camera frames compress several-fold)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {_OBS_PREFIX + key: value for key, value in self.obs.items()}
        meta = json.dumps({"facts": [[list(f) for f in frame] for frame in self.facts], "task": self.task})
        return atomic_write(
            path, lambda temp: np.savez_compressed(temp, episode=self.episode, meta=np.array(meta), **arrays),
            suffix=".npz",
        )

    @classmethod
    def load(cls, path: str | Path) -> FrameSet:
        """Read a file written by `save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no frame set at {path}")
        try:  # plain arrays only: a file with pickled objects is refused, not unpickled
            with np.load(path, allow_pickle=False) as data:
                if "meta" not in data or "episode" not in data:
                    raise ValueError(f"{path} is not a frame set (expected 'meta' and 'episode' arrays)")
                meta = json.loads(str(data["meta"]))
                obs = {key[len(_OBS_PREFIX) :]: data[key] for key in data.files if key.startswith(_OBS_PREFIX)}
                return cls(obs, meta["facts"], data["episode"], meta["task"])
        except ValueError as error:
            if "Object arrays" in str(error):
                raise ValueError(f"{path} holds pickled objects, not a frame set's plain arrays; it is not read, "
                                 f"because loading it could run code") from error
            if "is not a frame set" in str(error):
                raise
            raise ValueError(f"{path} is not a readable frame set: {type(error).__name__}: {error}") from error
        except (OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as error:
            raise ValueError(f"{path} is not a readable frame set: {type(error).__name__}: {error}") from error
