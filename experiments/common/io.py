"""Atomic file writes for experiments: `causal.atomic` with the usual file permissions and the target's suffix.

A crash or a kill never leaves a half-written output behind. The implementation is the library packages'
`atomic.py` (one module, copied byte for byte into envs, perception, causal and memory); the causal copy is
used here because that package is the cheapest to import.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from causal import atomic


def atomic_write(path: str | Path, write: Callable[[str], None], suffix: str = "") -> Path:
    """Call `write(tmp_path)`, then rename the temporary file over `path` in one step."""
    path = Path(path)
    return atomic.atomic_write(path, write, suffix=suffix or path.suffix)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
