"""Saving and loading pretrained perception encoders.

A checkpoint holds the encoder weights by encoder name (`camera_front`, `touch`, ...) plus the
hyper-parameters that shaped them, so any `MultiModalExtractor` whose observation space has matching
keys can start from it, whatever fusion mode or policy it sits in. Files are written atomically.
"""

from __future__ import annotations

import io
import logging
import pickle
import re
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from perception.atomic import atomic_write

log = logging.getLogger(__name__)

FORMAT = "embodia.perception/1"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write `payload` (plus the format tag) to `path` through a temporary file and `os.replace`."""
    return atomic_write(path, lambda temp: torch.save({"format": FORMAT, **payload}, temp))


class PickledObjectsError(ValueError):
    """A torch file holds pickled objects beyond tensors and plain data: it is refused, never unpickled."""


def load_weights(source: str | Path | IO[bytes] | bytes, what: str) -> Any:
    """`torch.load(weights_only=True)` with its refusals as clear errors: tensors, dicts, lists and numbers only.

    A file holding any other object (a planted payload, or a file of an older version that pickled whole
    objects) is refused before any of its code runs; `what` names the file in the message.

    Raises:
        PickledObjectsError: the file holds objects that are not plain data.
        ValueError: the file is not a torch file at all (damaged, truncated, foreign).
    """
    try:
        return torch.load(io.BytesIO(source) if isinstance(source, bytes) else source, map_location="cpu",
                          weights_only=True)
    except pickle.UnpicklingError as error:
        text = str(error)
        unsafe = re.search(r"(?:unsupported )?GLOBAL [\w.]+", text, flags=re.IGNORECASE)
        if unsafe:
            raise PickledObjectsError(f"{what} holds pickled objects ({unsafe[0]}), written by an older version or "
                                      f"planted; it is not read, because loading it could run code") from error
        detail = next((line.strip() for line in text.splitlines()[::-1] if line.strip()
                       and "documentation" not in line), "unreadable")
        raise ValueError(f"{what} is not a readable torch file: {detail}") from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ValueError(f"{what} is not a readable torch file: {type(error).__name__}: {error}") from error


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, checking that it is one (and running nothing in it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no perception checkpoint at {path}")
    payload = load_weights(path, f"perception checkpoint {path}")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} is not a perception checkpoint: expected format {FORMAT!r}, found {found!r}")
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
        raise ValueError(
            f"{path} has encoders {sorted(saved)} but this observation space needs {sorted(encoders)}; none match"
        )
    for name in common:
        target = encoders[name].state_dict()
        if set(target) != set(saved[name]):
            raise ValueError(
                f"{path}: encoder {name!r} has layers {sorted(saved[name])} but this observation space needs "
                f"{sorted(target)} (different image size or layout?)"
            )
        for key, tensor in saved[name].items():
            if target[key].shape != tensor.shape:
                raise ValueError(
                    f"{path}: encoder {name!r} parameter {key!r} has shape {tuple(tensor.shape)} but this "
                    f"observation space needs {tuple(target[key].shape)} (different image size or layout?)"
                )
        encoders[name].load_state_dict(saved[name])
        if freeze:
            encoders[name].requires_grad_(False)
    skipped = sorted(set(encoders) - set(common))
    log.info("loaded pretrained encoders %s from %s; fresh: %s", common, path, skipped)
    return common
