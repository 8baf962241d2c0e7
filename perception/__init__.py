"""Perception: camera RGB-D, fingertip touch, proprioception and language into embeddings.

The public names, importable from here (loaded on first use: the extractor pulls in torch and
stable-baselines3, which a caller that only needs the text-encoder protocol need not pay for)::

    from perception import MultiModalExtractor, default_text_encoder, GoalEmbeddingWrapper
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GoalEmbeddingWrapper": "perception.goal_wrapper",
    "HashingTextEncoder": "perception.text",
    "MiniLMEncoder": "perception.text",
    "ModalityLayout": "perception.layout",
    "MultiModalExtractor": "perception.extractor",
    "TextEncoder": "perception.text",
    "build_encoders": "perception.extractor",
    "default_text_encoder": "perception.text",
    "policy_kwargs": "perception.extractor",
    "read_layout": "perception.layout",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
