"""Read an observation space into modalities: which keys are cameras, touch, vectors and the goal.

Encoders are sized from this layout, never from imported key constants, so the same extractor serves
`state`, `rgbd` and `rgbd_touch` observations (and any future camera) without code changes. The only
conventions relied on are the names of the env contract: `rgb_<camera>` / `depth_<camera>` images,
`touch` for the fingertip vector and `goal` for the instruction embedding added by the goal wrapper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

RGB_PREFIX = "rgb_"
DEPTH_PREFIX = "depth_"
TOUCH_KEY = "touch"
GOAL_KEY = "goal"


@dataclass(frozen=True)
class ImageSpec:
    """One image key: where its channel axis is and how big it is."""

    key: str
    channels: int
    height: int
    width: int
    channels_first: bool
    scale: float  # multiply raw values by this to get roughly [0, 1]


@dataclass(frozen=True)
class CameraSpec:
    """An RGB-D camera: colour and/or depth images of the same size, stacked into one tensor."""

    name: str
    rgb: ImageSpec | None
    depth: ImageSpec | None

    @property
    def channels(self) -> int:
        """Channels of the camera's stacked images: RGB's plus depth's, whichever it has."""
        return (self.rgb.channels if self.rgb else 0) + (self.depth.channels if self.depth else 0)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the camera's images; RGB and depth share it."""
        image = self.rgb or self.depth
        assert image is not None, "a camera has at least one image"
        return image.height, image.width


@dataclass(frozen=True)
class ModalityLayout:
    """Everything an encoder factory needs to know about an observation space."""

    cameras: tuple[CameraSpec, ...]
    touch: tuple[str, int] | None  # (key, size)
    vectors: tuple[tuple[str, int], ...]  # proprio, objects, any other flat float key
    goal: tuple[str, int] | None

    @property
    def token_names(self) -> tuple[str, ...]:
        """Names of the encoders, in the fixed order their outputs are fused."""
        names = [f"camera_{camera.name}" for camera in self.cameras]
        if self.touch:
            names.append("touch")
        names.extend(f"vector_{key}" for key, _ in self.vectors)
        if self.goal:
            names.append("goal")
        return tuple(names)


def _image_spec(key: str, space: spaces.Box, expected_channels: int) -> ImageSpec:
    shape = space.shape
    if shape[-1] == expected_channels:
        channels_first = False
        height, width = shape[0], shape[1]
    elif shape[0] == expected_channels:
        channels_first = True
        height, width = shape[1], shape[2]
    else:
        raise ValueError(f"observation {key!r} has shape {shape}; expected {expected_channels} channels first or last")
    if space.dtype == np.uint8:
        scale = 1.0 / 255.0
    else:
        high = float(np.max(space.high))
        scale = 1.0 / high if np.isfinite(high) and high > 0 else 1.0
    return ImageSpec(key, expected_channels, int(height), int(width), channels_first, scale)


def _camera_specs(images: dict[str, spaces.Box]) -> tuple[CameraSpec, ...]:
    rgb: dict[str, ImageSpec] = {}
    depth: dict[str, ImageSpec] = {}
    for key, space in images.items():
        if key.startswith(DEPTH_PREFIX):
            depth[key[len(DEPTH_PREFIX) :]] = _image_spec(key, space, 1)
        else:
            name = key[len(RGB_PREFIX) :] if key.startswith(RGB_PREFIX) else key
            rgb[name] = _image_spec(key, space, 3)
    cameras = []
    for name in sorted(set(rgb) | set(depth)):
        camera = CameraSpec(name, rgb.get(name), depth.get(name))
        if (
            camera.rgb
            and camera.depth
            and (camera.rgb.height, camera.rgb.width)
            != (
                camera.depth.height,
                camera.depth.width,
            )
        ):
            raise ValueError(
                f"camera {name!r}: rgb is {camera.rgb.height}x{camera.rgb.width} but depth is "
                f"{camera.depth.height}x{camera.depth.width}; they must match to be stacked"
            )
        cameras.append(camera)
    return tuple(cameras)


def read_layout(observation_space: spaces.Space) -> ModalityLayout:
    """Sort the keys of a flat `spaces.Dict` into modalities.

    Three-dimensional boxes are images (`depth_*` one channel, anything else three); one-dimensional
    float boxes are vectors, except `touch` and `goal`, which get their own encoders.

    Raises:
        TypeError: the space is not a flat Dict of Boxes.
        ValueError: an image has an unexpected shape, or the space has nothing to encode.
    """
    if not isinstance(observation_space, spaces.Dict):
        raise TypeError(f"expected a gymnasium spaces.Dict observation space, got {type(observation_space).__name__}")
    images: dict[str, spaces.Box] = {}
    vectors: list[tuple[str, int]] = []
    touch = goal = None
    for key in sorted(observation_space.spaces):
        space = observation_space[key]
        if not isinstance(space, spaces.Box):
            raise TypeError(f"observation {key!r} must be a spaces.Box, got {type(space).__name__}")
        if len(space.shape) == 3:
            images[key] = space
        elif len(space.shape) == 1:
            size = int(space.shape[0])
            if key == TOUCH_KEY:
                touch = (key, size)
            elif key == GOAL_KEY:
                goal = (key, size)
            else:
                vectors.append((key, size))
        else:
            raise ValueError(f"observation {key!r} has shape {space.shape}; expected (H, W, C) or (N,)")
    layout = ModalityLayout(_camera_specs(images), touch, tuple(vectors), goal)
    if not layout.token_names:
        raise ValueError("the observation space has no keys to encode")
    return layout
