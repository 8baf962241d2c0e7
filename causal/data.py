"""CSV data for SCMs: a header of node names, one unit per row, discrete values as state names.

Writing is atomic (temporary file, then ``os.replace``) so an interrupted run never leaves a half file.
Reading converts each column with the model: discrete columns to state indices, continuous ones to floats,
with errors that name the file, the column and the offending value.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from causal.atomic import atomic_write
from causal.errors import InputError, UnknownNameError
from causal.spec import SCM


def write_csv(path: str | Path, columns: Mapping[str, Sequence[object]]) -> Path:
    """Write columns (equal length) to `path` atomically; floats keep full precision."""
    path = Path(path)
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns have different lengths: { {k: len(v) for k, v in columns.items()} }")

    def write(temporary: str) -> None:
        with open(temporary, "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(list(columns))
            for row in zip(*columns.values(), strict=True):
                writer.writerow([repr(v) if isinstance(v, float) else v for v in row])

    return atomic_write(path, write)


def read_table(path: str | Path) -> dict[str, list[str]]:
    """Read a CSV file into raw string columns keyed by header name."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    with path.open(newline="") as stream:
        rows = list(csv.reader(stream))
    if not rows or not rows[0]:
        raise InputError(f"{path}: empty CSV file (expected a header of node names)")
    header = [name.strip() for name in rows[0]]
    if len(set(header)) != len(header):
        raise InputError(f"{path}: duplicate column names in header {header}")
    columns: dict[str, list[str]] = {name: [] for name in header}
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise InputError(f"{path}: line {number} has {len(row)} values, the header has {len(header)}")
        for name, value in zip(header, row, strict=True):
            columns[name].append(value.strip())
    return columns


def load_data(scm: SCM, path: str | Path, columns: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Read the model's columns from a CSV file: state indices for discrete nodes, floats otherwise.

    Columns that are not model nodes are ignored; `columns` (if given) must all be present.
    """
    raw = read_table(path)
    wanted = list(columns) if columns is not None else [c for c in raw if c in scm.equations]
    data: dict[str, np.ndarray] = {}
    for name in wanted:
        if name not in raw:
            raise UnknownNameError(f"{path}: no column {name!r}; columns are {list(raw)}")
        scm.check_node(name, f"column in {path}")
        data[name] = _convert(scm, name, raw[name], path)
    return data


def _convert(scm: SCM, name: str, values: list[str], path: str | Path) -> np.ndarray:
    if scm.is_discrete:
        states = scm.states(name)
        lookup = {state: i for i, state in enumerate(states)}
        bad = next((v for v in values if v not in lookup), None)
        if bad is not None:
            raise InputError(f"{path}: column {name!r} has value {bad!r}; its states are {list(states)}")
        return np.array([lookup[v] for v in values], dtype=int)
    try:
        return np.array([float(v) for v in values], dtype=float)
    except ValueError:
        bad = next(v for v in values if not _is_float(v))
        raise InputError(f"{path}: column {name!r} has non-numeric value {bad!r}") from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
