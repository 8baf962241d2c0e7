"""Atomic file writes: a crash never leaves half a file behind.

`atomic_write` hands the caller a temporary path in the target's folder, then renames it over the target
with `os.replace` (atomic on POSIX); on any error the temporary file is removed and the old file, if any,
is untouched. That includes KeyboardInterrupt (and SIGTERM, which the `embodia` CLI turns into one), so an
interrupted export leaves no temporary file; only SIGKILL can, and the hidden ``.<name>.*`` file is then inert.

Why four copies: the repository's layout is fixed (no top-level package beside the six) and the import
rules keep envs, perception, causal and memory independent of each other, so each library package
carries this standard-library-only module as `<package>/atomic.py`. The copies are byte-identical, and
tests/test_architecture.py fails if one drifts; experiments/ uses the causal copy (the
lightest package to import) through `experiments.common.io`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]


def atomic_write(
    path: str | Path,
    write: Callable[[str], None],
    *,
    suffix: str = ".tmp",
    prefix: str | None = None,
    fsync: bool = False,
    shared_mode: bool = True,
) -> Path:
    """Call `write(tmp_path)`, then rename the temporary file over `path` in one step.

    Args:
        path: The file to create or replace; its folder is created if missing.
        write: Writes the whole content to the temporary path it is given.
        suffix: Ending of the temporary name. Writers that pick a format by extension (numpy's .npz,
            matplotlib's .png) need the real one.
        prefix: Start of the temporary name (default ``.<name>.``, a hidden file beside the target).
        fsync: Flush the written bytes to disk before the rename (for files a crash must not lose).
        shared_mode: Give the file the usual permissions (0666 minus the umask, so 0644 under the common
            umask 022) instead of the owner-only 0600 that `mkstemp` creates; pass False only for a secret.

    Returns:
        The target path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}." if prefix is None else prefix,
                                    suffix=suffix)
    os.close(handle)
    try:
        write(temp)
        if fsync:
            with open(temp, "rb") as written:
                os.fsync(written.fileno())
        if shared_mode:
            os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str, **options: object) -> Path:
    """Write `text` to `path` atomically (options as for `atomic_write`)."""
    return atomic_write(path, lambda temp: Path(temp).write_text(text), **options)  # type: ignore[arg-type]


def atomic_write_bytes(path: str | Path, data: bytes, **options: object) -> Path:
    """Write `data` to `path` atomically (options as for `atomic_write`)."""
    return atomic_write(path, lambda temp: Path(temp).write_bytes(data), **options)  # type: ignore[arg-type]


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
