"""The one JSON writer of experiments: strict JSON, never a bare NaN or Infinity.

Python's `json` writes ``NaN``, ``Infinity`` and ``-Infinity`` for non-finite floats by default; no other JSON
parser accepts them (``jq``, JavaScript, Go, Rust's serde all refuse the file). Every ``--json`` output and every
JSON file a command writes (``metrics.json``, ``summary.json``, cards, traces) goes through `to_json_text`, which
replaces each non-finite float by ``null`` and says so: a top-level object gets a ``"non_finite"`` list of the
paths that were replaced (``"rows[3].rate"``); in a top-level list, each object element gets its own list. A
reader can therefore tell "no value" from "the value was NaN or infinite".

numpy scalars and arrays, tuples, sets and paths are converted to plain JSON on the way.

Reading user-supplied JSON (`parse_json`) is bounded: Python's parser recurses once per nesting level, so ten
thousand ``[`` end in a RecursionError (a crash, not a user error); the depth is checked first, iteratively.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from experiments.common.errors import InputError
from experiments.common.io import atomic_write_text

NON_FINITE_KEY = "non_finite"
MAX_JSON_DEPTH = 64
# A whole string token (so brackets inside strings are skipped) or one bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def parse_json(text: str, what: str = "JSON", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse user-supplied JSON text; InputError (naming `what`) when it is malformed or nests too deeply."""
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                raise InputError(f"{what}: JSON nests deeper than {max_depth} levels (at character {match.start()})")
        elif token in "]}":
            depth -= 1
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{what}: not valid JSON ({error})") from None
    except RecursionError:  # belt and braces: the scan above should have refused it
        raise InputError(f"{what}: JSON nests too deeply") from None


def finite_or_null(value: Any, path: str = "", found: list[str] | None = None) -> Any:
    """A JSON-ready copy of `value` with every non-finite float replaced by None.

    Args:
        value: Nested dicts, lists, tuples, sets, numbers, strings, numpy values, paths.
        path: Where `value` sits in the document (used in the report of replaced values).
        found: Collects the paths of replaced values, in document order.

    Returns:
        The converted value.
    """
    found = [] if found is None else found
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        found.append(path or "$")
        return None
    if isinstance(value, Mapping):
        return {str(key): finite_or_null(item, f"{path}.{key}" if path else str(key), found)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item, f"{path}[{index}]", found) for index, item in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return [finite_or_null(item, f"{path}[{index}]", found) for index, item in enumerate(sorted(value, key=str))]
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "__float__"):  # e.g. a torch scalar
        return finite_or_null(float(value), path, found)
    return value  # json.dumps' `default=` (if given) converts it, or json raises TypeError


def strict_json(data: Any) -> Any:
    """`data` made JSON-ready, with the ``non_finite`` notes added (see the module docstring)."""
    if isinstance(data, (list, tuple)):
        return [strict_json(item) if isinstance(item, Mapping) else finite_or_null(item, f"[{index}]")
                for index, item in enumerate(data)]
    found: list[str] = []
    converted = finite_or_null(data, "", found)
    if found and isinstance(converted, dict):
        converted[NON_FINITE_KEY] = found
    return converted


def to_json_text(data: Any, indent: int | None = 2, **options: Any) -> str:
    """Serialise `data` as strict JSON (``allow_nan=False`` after the conversion, so nothing slips through)."""
    return json.dumps(strict_json(data), indent=indent, allow_nan=False, **options)


def write_json(path: str | Path, data: Any, indent: int | None = 2, **options: Any) -> Path:
    """Write `data` to `path` as strict JSON, atomically, with the usual file permissions."""
    return atomic_write_text(path, to_json_text(data, indent=indent, **options) + "\n")
