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


MATCH, MISMATCH, MISSED, TEXT = (120, 220, 120), (255, 90, 80), (255, 190, 60), (235, 235, 235)


def facts_panel(perceived: Sequence[Sequence[str]], true: Sequence[Sequence[str]], views: Sequence[np.ndarray],
                height: int, width: int = 250) -> np.ndarray:
    """A side panel for perception videos: the robot's camera views, then perceived facts against the true ones.

    A perceived fact that is true is green, one that is false is red; a true fact perception missed is listed
    below in orange. Remembered facts may be passed in `perceived` with a trailing "(remembered)" marker.
    """
    panel = Image.new("RGB", (width, height), (20, 20, 24))
    draw = ImageDraw.Draw(panel)
    font = ImageFont.load_default()
    x = 4
    side = (width - 12) // max(len(views), 1)
    for view in views:
        image = Image.fromarray(np.ascontiguousarray(view[:, :, :3])).resize((side, side), Image.NEAREST)
        panel.paste(image, (x, 4))
        x += side + 4
    y = side + 10
    truth = {" ".join(f) for f in true}
    shown = {" ".join(f).removesuffix(" (remembered)") for f in perceived}
    draw.text((4, y), "perceived (green: true, red: false)", fill=TEXT, font=font)
    y += 13
    for fact in perceived:
        text = " ".join(fact)
        colour = MATCH if text.removesuffix(" (remembered)") in truth else MISMATCH
        if fact and fact[0] == "unknown":
            colour = MISSED
        draw.text((8, y), _fit(text, width - 8), fill=colour, font=font)
        y += 12
    missed = [text for text in (" ".join(f) for f in true) if text not in shown]
    if missed:
        draw.text((4, y + 2), "true, not perceived", fill=TEXT, font=font)
        y += 15
        for text in missed:
            draw.text((8, y), _fit(text, width - 8), fill=MISSED, font=font)
            y += 12
    return np.asarray(panel)
