"""Demonstrations and DAgger data as Minari datasets (the Farama standard for offline RL / imitation data).

One dataset holds the episodes of one collection (a `collect` run, or one DAgger round). Each episode's
`observations` are the policy's inputs (env keys plus the `goal` embedding), `actions` the expert's labels
(what the scripted expert would do in each visited state), and `infos` carry what was actually executed
(`executed_action`: the student's action where it drove), the argument index of the task and the success
flag. Datasets live under an explicit root folder (never `~/.minari`): Minari's own `load_dataset` reads
them with `MINARI_DATASETS_PATH` pointing there, which `datasets_root` sets for the duration of a call.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from experiments.common.errors import InputError

NAMESPACE = "embodia"


@dataclass
class Episode:
    """One recorded episode: n+1 observations, n expert labels, n executed actions."""

    seed: int
    observations: dict[str, list[np.ndarray]] = field(default_factory=dict)
    labels: list[np.ndarray] = field(default_factory=list)
    executed: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False
    success: bool = False
    argument_index: int = -1
    task: str = ""
    instruction: str = ""

    def add_observation(self, obs: dict[str, np.ndarray]) -> None:
        """Append one observation, key by key (Minari stores one more observation than actions per episode)."""
        for key, value in obs.items():
            self.observations.setdefault(key, []).append(np.asarray(value))

    def __len__(self) -> int:
        return len(self.labels)


@contextlib.contextmanager
def datasets_root(root: str | Path) -> Iterator[Path]:
    """Point Minari at `root` (MINARI_DATASETS_PATH) for the duration of the block, then restore it."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield root
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def dataset_id(name: str, version: int = 0) -> str:
    """`embodia/<name>-v<version>`; `name` may use letters, digits, `_` and `-`."""
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise InputError(f"dataset name must be letters, digits, '_' or '-', got {name!r}")
    return f"{NAMESPACE}/{name}-v{version}"


def _buffer(index: int, episode: Episode) -> Any:
    from minari.data_collector import EpisodeBuffer

    n = len(episode)
    if n == 0 or any(len(rows) != n + 1 for rows in episode.observations.values()):
        raise ValueError(f"episode {index} needs n+1 observations for its n >= 1 actions")
    executed = np.concatenate([np.zeros((1, *episode.executed[0].shape), np.float32), np.stack(episode.executed)])
    return EpisodeBuffer(
        id=index, seed=episode.seed,
        observations={k: np.stack(v) for k, v in episode.observations.items()},
        actions=np.stack(episode.labels).astype(np.float32), rewards=[float(r) for r in episode.rewards],
        terminations=[False] * (n - 1) + [episode.terminated], truncations=[False] * (n - 1) + [episode.truncated],
        infos={"executed_action": executed.astype(np.float32),
               "success": np.array([False] * n + [episode.success]),
               "argument_index": np.full(n + 1, episode.argument_index, np.int64)})


def write_dataset(root: str | Path, name: str, episodes: Sequence[Episode], observation_space: spaces.Dict,
                  action_space: spaces.Box, description: str, algorithm: str) -> Path:
    """Write `episodes` as the Minari dataset `embodia/<name>-v0` under `root`; returns its folder.

    Written into a temporary root and moved into place in one rename, so a killed run leaves no half dataset.
    Images are stored losslessly (no JPEG encoding). An existing dataset of that name is an error.
    """
    import minari

    root = Path(root).resolve()
    ident = dataset_id(name)
    final = root / ident
    if final.exists():
        raise InputError(f"a dataset named {ident} already exists in {root}; choose another --out or name")
    if not episodes:
        raise ValueError("no episodes to write")
    root.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-minari-"))
    try:
        with datasets_root(tmp_root), warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="minari")  # advice about optional metadata fields
            minari.create_dataset_from_buffers(
                ident, [_buffer(i, e) for i, e in enumerate(episodes)], observation_space=observation_space,
                action_space=action_space, algorithm_name=algorithm, author="embodia",
                code_permalink="https://github.com/embodia/embodia", description=description, data_format="hdf5",
                jpeg_encoding=False)
        final.parent.mkdir(parents=True, exist_ok=True)
        namespace_meta = tmp_root / NAMESPACE / "namespace_metadata.json"
        if namespace_meta.is_file() and not (root / NAMESPACE / "namespace_metadata.json").exists():
            shutil.copyfile(namespace_meta, root / NAMESPACE / "namespace_metadata.json")
        os.replace(tmp_root / ident, final)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return final


def load_dataset(root: str | Path, name: str) -> Any:
    """`minari.load_dataset` of `embodia/<name>-v0` under `root` (a FileNotFoundError naming what exists)."""
    import minari

    root = Path(root).resolve()
    ident = dataset_id(name)
    if not (root / ident).is_dir():
        namespace = root / NAMESPACE
        found = sorted(p.name for p in namespace.iterdir() if p.is_dir()) if namespace.is_dir() else []
        raise FileNotFoundError(f"no Minari dataset {ident} under {root}; found: {', '.join(found) or 'none'}")
    with datasets_root(root):
        return minari.load_dataset(ident)


def transitions(datasets: Sequence[Any], gamma: float) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, int,
                                                                   int]:
    """(observations, expert labels, discounted returns, episodes, successes) over every step of `datasets`.

    The last observation of each episode (after its final action) has no label and is dropped.
    """
    observations: dict[str, list[np.ndarray]] = {}
    labels: list[np.ndarray] = []
    returns: list[np.ndarray] = []
    episodes = successes = 0
    for dataset in datasets:
        for episode in dataset.iterate_episodes():
            for key, rows in episode.observations.items():
                observations.setdefault(key, []).append(np.asarray(rows)[:-1])
            labels.append(np.asarray(episode.actions, np.float32))
            running, out = 0.0, []
            for reward in np.asarray(episode.rewards, np.float64)[::-1]:
                running = float(reward) + gamma * running
                out.append(running)
            returns.append(np.asarray(out[::-1], np.float32))
            episodes += 1
            successes += int(bool(np.asarray(episode.infos["success"])[-1]))
    if not labels:
        raise InputError("the datasets hold no episodes")
    return ({k: np.concatenate(v) for k, v in observations.items()}, np.concatenate(labels), np.concatenate(returns),
            episodes, successes)


def argument_indices(datasets: Sequence[Any]) -> np.ndarray:
    """Per step of `transitions(datasets)`, in the same order, the index of the episode's task arguments."""
    rows = [np.asarray(episode.infos["argument_index"], np.int64)[:-1]
            for dataset in datasets for episode in dataset.iterate_episodes()]
    if not rows:
        raise InputError("the datasets hold no episodes")
    return np.concatenate(rows)
