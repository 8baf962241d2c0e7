"""Saving and loading pretrained perception encoders.

A checkpoint holds the encoder weights by encoder name (`camera_front`, `touch`, ...) plus the
hyper-parameters that shaped them, so any `MultiModalExtractor` whose observation space has matching
keys can start from it, whatever fusion mode or policy it sits in. Files are written atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from perception.atomic import atomic_write
from perception.errors import InputError

log = logging.getLogger(__name__)

FORMAT = "embodia.perception/1"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write `payload` (plus the format tag) to `path` through a temporary file and `os.replace`."""
    return atomic_write(path, lambda temp: torch.save({"format": FORMAT, **payload}, temp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, checking that it is one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no perception checkpoint at {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise InputError(f"{path} is not a perception checkpoint: expected format {FORMAT!r}, found {found!r}")
    return payload


def load_encoders(encoders: nn.ModuleDict, path: str | Path, freeze: bool = False) -> list[str]:
    """Copy the checkpoint's encoder weights into the same-named modules of `encoders`.

    Encoders the checkpoint lacks (e.g. proprio, goal) keep their fresh initialisation.

    Returns:
        The names that were loaded.

    Raises:
        ValueError: no encoder names in common, or a shape differs (e.g. 64 px weights into a 128 px camera).
    """
    payload = load_checkpoint(path)
    saved: dict[str, dict[str, torch.Tensor]] = payload["encoders"]
    common = [name for name in encoders if name in saved]
    if not common:
        raise InputError(
            f"{path} has encoders {sorted(saved)} but this observation space needs {sorted(encoders)}; none match"
        )
    for name in common:
        target = encoders[name].state_dict()
        if set(target) != set(saved[name]):
            raise InputError(
                f"{path}: encoder {name!r} has layers {sorted(saved[name])} but this observation space needs "
                f"{sorted(target)} (different image size or layout?)"
            )
        for key, tensor in saved[name].items():
            if target[key].shape != tensor.shape:
                raise InputError(
                    f"{path}: encoder {name!r} parameter {key!r} has shape {tuple(tensor.shape)} but this "
                    f"observation space needs {tuple(target[key].shape)} (different image size or layout?)"
                )
        encoders[name].load_state_dict(saved[name])
        if freeze:
            encoders[name].requires_grad_(False)
    skipped = sorted(set(encoders) - set(common))
    log.info("loaded pretrained encoders %s from %s; fresh: %s", common, path, skipped)
    return common
