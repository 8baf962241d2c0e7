"""Videos and images people look at: animated GIFs with a caption strip, PNG frames."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from experiments.common.io import atomic_write

CAPTION_HEIGHT = 28


def caption_frame(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """Append a dark strip under `frame` with up to two lines of text."""
    width = frame.shape[1]
    strip = Image.new("RGB", (width, CAPTION_HEIGHT), (20, 20, 24))
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default()
    for row, text in enumerate(list(lines)[:2]):
        draw.text((4, 2 + 13 * row), _fit(text, width), fill=(235, 235, 235), font=font)
    return np.concatenate([frame[:, :, :3], np.asarray(strip)], axis=0)


def _fit(text: str, width: int) -> str:
    limit = max(8, width // 6)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def save_gif(path: str | Path, frames: Sequence[np.ndarray], fps: int = 12) -> Path:
    """Write an animated GIF atomically (looping forever)."""
    if not frames:
        raise ValueError(f"no frames to write to {path}")
    duration_ms = 1000.0 / fps
    return atomic_write(path, lambda tmp: imageio.mimsave(tmp, list(frames), format="GIF", duration=duration_ms,
                                                          loop=0))


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write `image` (HxWx3 or HxW uint8) to `path` as a PNG, atomically, and return the path."""
    return atomic_write(path, lambda tmp: imageio.imwrite(tmp, image, format="PNG"))
