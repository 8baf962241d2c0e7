"""Training checkpoints: one file per checkpoint holding everything an exact resumption needs.

A checkpoint is a zip written through a temporary file and `os.replace`, so a kill at any moment leaves
either the previous set of checkpoints or the previous set plus one complete new file. Members:

- `meta.json`: format tag, step, task, observation mode and spaces, architecture (compatibility check);
- `model.zip`: the SB3 PPO model (policy weights, optimizer state, counters);
- `vecnormalize.pkl`: reward-normalisation statistics, when used;
- `state.pkl`: the python / numpy / torch RNG states, SB3's episode buffers and the run's metric history.

Loading checks all of it before anything is built or written, and reports a damaged or foreign file as a
`ValueError` that names it.
"""

from __future__ import annotations

import io
import json
import pickle
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causal.atomic import atomic_write
from experiments.training.config import TrainConfig

FORMAT = "embodia.train_checkpoint/1"
NAME = re.compile(r"step_(\d{10})\.ckpt")
ARCHITECTURE = ("task", "obs_mode", "net_arch", "token_dim", "fusion", "cnn_width", "object_heads", "image_size",
                "encoder",
                "n_envs", "n_steps")
MEMBERS = ("meta.json", "model.zip", "state.pkl")


@dataclass
class Checkpoint:
    """A loaded checkpoint (bytes still packed: the model is rebuilt around a fresh env)."""

    path: Path
    step: int
    meta: dict[str, Any]
    model_bytes: bytes
    vecnormalize_bytes: bytes | None
    state: dict[str, Any]


def checkpoint_path(directory: Path, step: int) -> Path:
    """The checkpoint file for `step`, zero-padded so file names sort in step order."""
    return directory / f"step_{step:010d}.ckpt"


def capture_rng() -> dict[str, Any]:
    """Every global random state PPO draws from (numpy for minibatches, torch for actions)."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def restore_rng(states: dict[str, Any]) -> None:
    """Put back the random states `capture_rng` saved, so a resumed run draws what the uninterrupted one would."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


def describe_spaces(observation_space: Any) -> dict[str, list[int]]:
    """Shape of each part of a Dict observation space, stored with a checkpoint to check it fits on resume."""
    return {key: list(space.shape) for key, space in observation_space.spaces.items()}


def save_checkpoint(directory: Path, step: int, config: TrainConfig, model: Any, vecnormalize: Any,
                    state: dict[str, Any]) -> Path:
    """Write `step_<step>.ckpt` atomically; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    model.save(buffer)
    meta = {"format": FORMAT, "step": step, **{k: config.to_dict()[k] for k in ARCHITECTURE},
            "spaces": describe_spaces(model.observation_space)}
    path = checkpoint_path(directory, step)

    def write(temp: str) -> None:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr("meta.json", json.dumps(meta, indent=1))
            archive.writestr("model.zip", buffer.getvalue())
            archive.writestr("state.pkl", pickle.dumps(state))
            if vecnormalize is not None:
                archive.writestr("vecnormalize.pkl", pickle.dumps(vecnormalize))

    return atomic_write(path, write, fsync=True)


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint file in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m[1]), p) for p in directory.iterdir() if (m := NAME.fullmatch(p.name))]
    return sorted(found)


def prune_checkpoints(directory: Path, keep: int) -> None:
    """Delete all but the `keep` newest checkpoints (and stray temporary files of killed writes)."""
    for _, path in list_checkpoints(directory)[:-keep]:
        path.unlink(missing_ok=True)
    for stray in directory.glob(".step_*.tmp"):
        stray.unlink(missing_ok=True)


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and check one checkpoint file; a damaged or foreign file is a ValueError naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [m for m in MEMBERS if m not in names]
            if missing:
                raise ValueError(f"missing members {missing}")
            meta = json.loads(archive.read("meta.json"))
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
            model_bytes = archive.read("model.zip")
            state = pickle.loads(archive.read("state.pkl"))
            vecnormalize = archive.read("vecnormalize.pkl") if "vecnormalize.pkl" in names else None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, pickle.UnpicklingError,
            json.JSONDecodeError, ValueError, KeyError, AttributeError, ImportError) as error:
        raise ValueError(f"corrupt or foreign checkpoint {path}: {error}") from error
    return Checkpoint(path, int(meta["step"]), meta, model_bytes, vecnormalize, state)


def check_compatible(checkpoint: Checkpoint, config: TrainConfig) -> None:
    """Refuse a checkpoint made with another task, observation mode or architecture."""
    wanted = {k: config.to_dict()[k] for k in ARCHITECTURE}
    differs = {k: (checkpoint.meta.get(k), v) for k, v in wanted.items() if checkpoint.meta.get(k) != v}
    if differs:
        listing = ", ".join(f"{k}: checkpoint {a!r} vs run {b!r}" for k, (a, b) in differs.items())
        raise ValueError(f"checkpoint {checkpoint.path} is incompatible with this run ({listing})")


def latest_checkpoint(directory: Path) -> Checkpoint | None:
    """The newest checkpoint in `directory`, or None when there is none (a damaged newest one is an error)."""
    found = list_checkpoints(directory)
    return load_checkpoint(found[-1][1]) if found else None
