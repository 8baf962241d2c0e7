"""JSON in and out of the causal package: bounded reading of untrusted files, strict writing.

Reading (SCMs, queries) is bounded in size and nesting depth and accepts finite numbers only.
Writing never produces the non-standard ``NaN``/``Infinity`` tokens: `finite_or_null` replaces a
non-finite float by None (JSON null), and `dumps_strict` serialises with ``allow_nan=False``.

Python's `json` parser recurses once per nesting level, so a file of ten thousand ``[`` ends in a
RecursionError (a crash, not a user error), and it accepts the non-standard ``NaN``/``Infinity``
literals. Every model and query file goes through `read_json`, which refuses those inputs with a
ValueError that names the file and the limit before the parser runs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAX_JSON_DEPTH = 64
MAX_JSON_BYTES = 64 * 1024 * 1024

# A whole string token (so brackets inside strings are skipped) or one bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """Deepest bracket nesting in `text`, scanning no further than one level past `limit`.

    Raises:
        ValueError: when the nesting exceeds `limit`.
    """
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                raise ValueError(f"JSON nests deeper than {limit} levels (at character {match.start()})")
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (use a finite number or null)")


def parse_json(text: str, what: str = "JSON", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse `text` after the depth check; NaN and Infinity literals are refused."""
    json_depth(text, max_depth)
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise ValueError(f"{what}: not valid JSON ({error})") from None
    except ValueError as error:  # refused constants, integers too long to convert
        raise ValueError(f"{what}: {error}") from None


def read_json(path: str | Path, what: str = "JSON", max_bytes: int = MAX_JSON_BYTES,
              max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Read and parse the JSON file at `path` within the size and depth limits.

    Raises:
        FileNotFoundError: if `path` is not a file.
        ValueError: naming the file and the problem (too large, too deep, not JSON, NaN/Infinity).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{what} file not found: {file}")
    size = file.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{file}: {size} bytes is larger than the {max_bytes}-byte limit for {what} files")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        return parse_json(text, str(file), max_depth)
    except ValueError as error:
        message = str(error)
        raise ValueError(message if message.startswith(str(file)) else f"{file}: {message}") from None


def finite_or_null(value: Any) -> Any:
    """`value` with every non-finite float (nan, inf) replaced by None, through dicts, lists and tuples."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value


def dumps_strict(value: Any, **kwargs: Any) -> str:
    """`json.dumps` that writes null where a number is not finite, so the output is always standard JSON."""
    return json.dumps(finite_or_null(value), allow_nan=False, **kwargs)
