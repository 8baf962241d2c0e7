"""Training checkpoints: one file per checkpoint holding everything an exact resumption needs, and no code.

A checkpoint is a zip written through a temporary file and `os.replace`, so a kill at any moment leaves
either the previous set of checkpoints or the previous set plus one complete new file. Run folders travel
between machines (cluster users collect them from other nodes), so no member can carry code: nothing is
pickled. Members:

- `meta.json`: format tag, step, task, observation mode and spaces, architecture (compatibility check);
- `model.pt`: the policy's and optimizer's state_dicts (tensors, numbers, lists), read with
  `torch.load(weights_only=True)`;
- `state.json`: SB3's counters and episode buffers, the run's metric history, the python / numpy RNG
  states (numbers) and the reward-normalisation settings;
- `arrays.npz`: the arrays among them (numpy's Mersenne-Twister key, torch's RNG state, the
  reward-normalisation statistics), read with `allow_pickle=False`.

Loading checks all of it before anything is built or written. A damaged or foreign file is a `ValueError`
that names it; `latest_checkpoint` then falls back to the newest good one, with a warning. Checkpoints of
the first, pickled format are refused with a message that says they come from an older version.
"""

from __future__ import annotations

import io
import json
import logging
import math
import random
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causal.atomic import atomic_write
from experiments.common.errors import InputError
from experiments.training.config import TrainConfig
from perception.checkpoint import load_weights

logger = logging.getLogger(__name__)

FORMAT = "embodia.train_checkpoint/2"
PICKLED_FORMAT = "embodia.train_checkpoint/1"
"""The first format (pickled state and an SB3 model zip): refused, it can run code when read."""
NAME = re.compile(r"step_(\d{10})\.ckpt")
ARCHITECTURE = ("task", "obs_mode", "net_arch", "token_dim", "fusion", "cnn_width", "object_heads", "neighbour_tokens",
                "action_bins", "image_size", "encoder", "n_envs", "n_steps")
ADDED_LATER = {"neighbour_tokens": False, "action_bins": 0}
"""Architecture keys newer than some checkpoints: a checkpoint without one was made with this value."""
MEMBERS = ("meta.json", "model.pt", "state.json", "arrays.npz")
COUNTERS = ("num_timesteps", "_episode_num", "_n_updates", "_current_progress_remaining")
"""The SB3 model attributes (besides weights and optimizer) that a resumed `learn` reads."""
SESSION_KEYS = ("ep_info_buffer", "ep_success_buffer", "history", "elapsed_s", "bc", "grounding")
MAX_MEMBER_BYTES = 1 << 30
"""A member larger than this (uncompressed) is refused before it is read: a zip bomb gets no memory."""


class OldCheckpointError(InputError):
    """A checkpoint in the first, pickled format: it is not read, because reading it could run code."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: plain data only (the model is rebuilt around a fresh env and filled from it).

    Attributes:
        path: the file it was read from.
        step: the environment step it was taken at.
        meta: the format tag, architecture and observation spaces.
        model_state: `{"policy": state_dict, "optimizer": state_dict}`.
        counters: SB3's step and update counters (`COUNTERS`).
        vecnormalize: the reward-normalisation statistics, or None when the run does not normalise.
        state: the RNG states (`rng`: python, numpy, torch as their getstate functions return them) and the
            session's bookkeeping (`SESSION_KEYS`).
        skipped: why each newer checkpoint was passed over (damaged files `latest_checkpoint` fell back from);
            the caller tells the user.
    """

    path: Path
    step: int
    meta: dict[str, Any]
    model_state: dict[str, Any]
    counters: dict[str, Any]
    vecnormalize: dict[str, Any] | None
    state: dict[str, Any]
    skipped: tuple[str, ...] = ()


def checkpoint_path(directory: Path, step: int) -> Path:
    """Where the checkpoint of `step` lives in `directory` (names sort by step)."""
    return directory / f"step_{step:010d}.ckpt"


def capture_rng() -> dict[str, Any]:
    """Every global random state PPO draws from (numpy for minibatches, torch for actions)."""
    return {"python": random.getstate(), "numpy": np.random.get_state(legacy=True),
            "torch": torch.get_rng_state()}


def restore_rng(states: dict[str, Any]) -> None:
    """Put back the states `capture_rng` took, so the next draws repeat."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


def describe_spaces(observation_space: Any) -> dict[str, list[int]]:
    """The shape of every observation key (what the checkpoint's weights expect)."""
    return {key: list(space.shape) for key, space in observation_space.spaces.items()}


def _plain(value: Any) -> Any:
    """`value` as JSON data: numpy scalars become python numbers, tuples and deques become lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "deque":
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _split_rng(rng: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The RNG states as JSON data, their arrays moved into `arrays`."""
    version, internal, gauss = rng["python"]
    name, keys, pos, has_gauss, cached = rng["numpy"]
    arrays["rng/numpy_keys"] = np.asarray(keys, dtype=np.uint32)
    arrays["rng/torch"] = rng["torch"].numpy().astype(np.uint8)
    return {"python": {"version": version, "internal": list(internal), "gauss": gauss},
            "numpy": {"name": name, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}


def _join_rng(rng: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The inverse of `_split_rng`: states in the form `restore_rng` takes."""
    python, numpy_state = rng["python"], rng["numpy"]
    internal = tuple(int(v) for v in python["internal"])
    gauss = None if python["gauss"] is None else float(python["gauss"])
    return {"python": (int(python["version"]), internal, gauss),
            "numpy": (str(numpy_state["name"]), np.array(arrays["rng/numpy_keys"], dtype=np.uint32),
                      int(numpy_state["pos"]), int(numpy_state["has_gauss"]), float(numpy_state["cached_gaussian"])),
            "torch": torch.from_numpy(np.array(arrays["rng/torch"], dtype=np.uint8))}


def _split_vecnormalize(vecnormalize: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """VecNormalize's running statistics as JSON data + arrays (its settings come from the config)."""

    def running(prefix: str, rms: Any) -> dict[str, float]:
        arrays[f"{prefix}/mean"], arrays[f"{prefix}/var"] = np.asarray(rms.mean), np.asarray(rms.var)
        return {"count": float(rms.count)}

    obs_rms = getattr(vecnormalize, "obs_rms", None)
    obs: Any = None
    if isinstance(obs_rms, dict):
        obs = {key: running(f"vecnormalize/obs/{key}", rms) for key, rms in obs_rms.items()}
    elif obs_rms is not None:
        obs = running("vecnormalize/obs", obs_rms)
    return {"ret_rms": running("vecnormalize/ret", vecnormalize.ret_rms), "obs_rms": obs,
            "obs_is_dict": isinstance(obs_rms, dict), "training": bool(vecnormalize.training)}


def restore_vecnormalize(vecnormalize: Any, saved: dict[str, Any] | None, path: Path | str = "checkpoint") -> None:
    """Put a checkpoint's reward-normalisation statistics into the run's fresh `VecNormalize` layer.

    Raises:
        ValueError: the checkpoint and the run disagree on whether rewards are normalised, or on a shape.
    """
    if (vecnormalize is None) != (saved is None):
        raise InputError(f"checkpoint {path} {'has' if saved else 'has no'} reward-normalisation statistics "
                         f"but this run {'does not normalise' if vecnormalize is None else 'normalises'} rewards")
    if vecnormalize is None or saved is None:
        return
    arrays = saved["arrays"]

    def fill(rms: Any, prefix: str, values: dict[str, float]) -> None:
        mean, var = arrays[f"{prefix}/mean"], arrays[f"{prefix}/var"]
        if np.shape(mean) != np.shape(rms.mean) or np.shape(var) != np.shape(rms.var):
            raise InputError(f"checkpoint {path}: {prefix} statistics of shape {np.shape(mean)}, "
                             f"this run needs {np.shape(rms.mean)}")
        rms.mean, rms.var, rms.count = np.array(mean, dtype=np.float64), np.array(var, dtype=np.float64), \
            float(values["count"])

    fill(vecnormalize.ret_rms, "vecnormalize/ret", saved["ret_rms"])
    if saved["obs_rms"] is not None:
        obs_rms = vecnormalize.obs_rms
        if saved["obs_is_dict"]:
            for key, values in saved["obs_rms"].items():
                fill(obs_rms[key], f"vecnormalize/obs/{key}", values)
        else:
            fill(obs_rms, "vecnormalize/obs", saved["obs_rms"])
    vecnormalize.training = bool(saved["training"])


def save_checkpoint(directory: Path, step: int, config: TrainConfig, model: Any, vecnormalize: Any,
                    state: dict[str, Any]) -> Path:
    """Write `step_<step>.ckpt` atomically; returns its path.

    Args:
        directory: the run's checkpoint folder (created if missing).
        step: the environment step (also in the file name).
        config: the run's config (its architecture fields go into `meta.json`).
        model: the SB3 PPO model (weights, optimizer and counters are saved).
        vecnormalize: the env's VecNormalize layer, or None.
        state: `rng` (from `capture_rng`) and the session's `SESSION_KEYS`.
    """
    directory.mkdir(parents=True, exist_ok=True)
    weights = io.BytesIO()
    torch.save({"policy": model.policy.state_dict(), "optimizer": model.policy.optimizer.state_dict()}, weights)
    arrays: dict[str, np.ndarray] = {}
    document = {"counters": {name: _plain(getattr(model, name)) for name in COUNTERS},
                "rng": _split_rng(state["rng"], arrays),
                "session": {key: _plain(state.get(key)) for key in SESSION_KEYS},
                "vecnormalize": _split_vecnormalize(vecnormalize, arrays) if vecnormalize is not None else None}
    packed = io.BytesIO()
    np.savez(packed, **arrays)
    meta = {"format": FORMAT, "step": step, **{k: config.to_dict()[k] for k in ARCHITECTURE},
            "spaces": describe_spaces(model.observation_space)}
    path = checkpoint_path(directory, step)

    def write(temp: str) -> None:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr("meta.json", json.dumps(meta, indent=1))
            archive.writestr("model.pt", weights.getvalue())
            archive.writestr("state.json", json.dumps(document, allow_nan=True))
            archive.writestr("arrays.npz", packed.getvalue())

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


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_MEMBER_BYTES:
        raise InputError(f"member {name} claims {info.file_size} bytes (limit {MAX_MEMBER_BYTES})")
    return archive.read(name)


def _refuse_old(path: Path, names: set[str], meta: dict[str, Any] | None) -> None:
    if (meta is not None and meta.get("format") == PICKLED_FORMAT) or "state.pkl" in names:
        raise OldCheckpointError(
            f"checkpoint {path} was written by an older version of embodia in a pickled format, which is no "
            f"longer read because loading it can run arbitrary code; resume it with the version that wrote it, "
            f"or start a new run")


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and check one checkpoint file without running anything it holds.

    Raises:
        FileNotFoundError: there is no file at `path`.
        OldCheckpointError: the file is in the first, pickled format.
        ValueError: the file is damaged or foreign (the message names it).
    """
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            meta = json.loads(_read(archive, "meta.json")) if "meta.json" in names else None
            _refuse_old(path, names, meta if isinstance(meta, dict) else None)
            missing = [m for m in MEMBERS if m not in names]
            if missing:
                raise InputError(f"missing members {missing}")
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
                raise InputError(f"format {found!r}, expected {FORMAT!r}")
            model_state = load_weights(_read(archive, "model.pt"), "member model.pt")
            document = json.loads(_read(archive, "state.json"))
            with np.load(io.BytesIO(_read(archive, "arrays.npz")), allow_pickle=False) as packed:
                arrays = {key: packed[key] for key in packed.files}
        if not isinstance(model_state, dict) or set(model_state) != {"policy", "optimizer"}:
            raise InputError("model.pt does not hold the policy and optimizer state_dicts")
        counters = {name: document["counters"][name] for name in COUNTERS}
        state = {"rng": _join_rng(document["rng"], arrays),
                 **{key: document["session"][key] for key in SESSION_KEYS}}
        vecnormalize = document["vecnormalize"]
        if vecnormalize is not None:
            statistics = {k: v for k, v in arrays.items() if k.startswith("vecnormalize/")}
            vecnormalize = {**vecnormalize, "arrays": statistics}
        step = int(meta["step"])
    except OldCheckpointError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError, json.JSONDecodeError,
            ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        raise InputError(f"corrupt or foreign checkpoint {path}: {type(error).__name__}: {error}") from error
    if counters["num_timesteps"] != step:
        raise InputError(f"corrupt or foreign checkpoint {path}: step {step} but the model counted "
                         f"{counters['num_timesteps']} steps")
    if not math.isfinite(float(state["elapsed_s"])):
        raise InputError(f"corrupt or foreign checkpoint {path}: elapsed time {state['elapsed_s']!r}")
    return Checkpoint(path, step, meta, model_state, counters, vecnormalize, state)


def check_compatible(checkpoint: Checkpoint, config: TrainConfig) -> None:
    """Refuse a checkpoint made with another task, observation mode or architecture."""
    wanted = {k: config.to_dict()[k] for k in ARCHITECTURE}
    found = {k: checkpoint.meta.get(k, ADDED_LATER.get(k)) for k in ARCHITECTURE}
    differs = {k: (found[k], v) for k, v in wanted.items() if found[k] != v}
    if differs:
        listing = ", ".join(f"{k}: checkpoint {a!r} vs run {b!r}" for k, (a, b) in differs.items())
        raise InputError(f"checkpoint {checkpoint.path} is incompatible with this run ({listing})")


def latest_checkpoint(directory: Path) -> Checkpoint | None:
    """The newest readable checkpoint in `directory`, or None when there is none at all.

    A damaged newest checkpoint (a truncated copy, a disk error) is passed over and the one before it is
    used; the returned checkpoint lists why in `skipped`, for the caller to warn. When every checkpoint is
    damaged, the newest one's error is raised. A checkpoint of the old pickled format is never passed over
    silently: it raises `OldCheckpointError`.
    """
    errors: list[ValueError] = []
    for _, path in reversed(list_checkpoints(directory)):
        try:
            checkpoint = load_checkpoint(path)
        except OldCheckpointError:
            raise
        except ValueError as error:
            logger.info("skipping %s", error)
            errors.append(error)
            continue
        checkpoint.skipped = tuple(str(error) for error in errors)
        return checkpoint
    if errors:
        raise errors[0]
    return None
