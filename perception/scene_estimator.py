"""The scene-state estimator: symbolic facts, with confidences, read from cameras and touch alone.

A household robot has no oracle. `SceneEstimator` turns one `rgbd_touch` observation (front and wrist
RGB-D, fingertip touch, proprioception) into what the planner needs: where each movable object is
(a location class and a position), whether the drawer is open, whether the gripper holds something.
It refuses observations that carry privileged keys (`objects`), and it reads no other key than the
six senses it was built for.

Honest perception says when it does not know: a visibility head (trained on the simulator's
segmentation masks, never consulted at run time) tells whether the cameras see an object at all; an
object it judges invisible (in the closed drawer, hidden behind the arm), or whose location it is
unsure of, comes out ``unknown`` instead of as a guess.

This package never imports the simulator, so the label vocabulary (object names, location classes)
arrives as strings in `EstimatorConfig` and travels with the checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from perception.atomic import atomic_write
from perception.errors import InputError
from perception.heading import HeadingHead, heading_features
from perception.heading import seen as heading_seen
from perception.segmentation import (
    PinholeCamera,
    SegmenterNet,
    class_statistics,
    fall_back_to_wrist,
    relation_feature_size,
    relation_features,
    wrist_rays,
)

FORMAT = "embodia.scene_estimator/1"
UNKNOWN = "unknown"
SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "weights" / "scene_estimator.pt"
"""The scene estimator shipped with the package (its card: `weights/SCENE_ESTIMATOR_CARD.md`)."""
HELD = "held"
NOWHERE = "none"
PRIVILEGED_KEYS: tuple[str, ...] = ("objects", "scene_state", "facts")
"""Observation keys that carry the simulator's ground truth: an estimator that sees them would be cheating."""
SENSES: tuple[str, ...] = ("rgb_front", "depth_front", "rgb_wrist", "depth_wrist", "touch", "proprio")
DEPTH_CENTRE, DEPTH_SCALE = 1.0, 0.5
HEIGHT_SCALE = 0.1
FRONT, WRIST = 0, 1
"""The cameras' numbers for the segmenter's per-camera statistics."""


@dataclass(frozen=True)
class EstimatorConfig:
    """Everything that shapes an estimator: its vocabulary, its input and its network size.

    Attributes:
        objects: the movable objects it reports on, in output order.
        locations: location classes (e.g. "table", "bowl", "on_red_block", "held", "none").
        containers: locations that read as ``in`` facts (the rest read as ``on``; ``on_<x>`` means on x).
        image_size: side of the observation's camera images (the wrist camera's, where the front one differs).
        front_image_size: side of the front camera's images when finer than `image_size` (0: the same). The
            segmenter reads small objects (the mug: about a dozen pixels at 64) better from a finer front view.
        input_size: side the images are average-pooled to before the network (<= image_size).
        width: channels of the first convolution (later layers double it).
        touch_size, proprio_size: lengths of the touch and proprio vectors.
        position_centre, position_scale: how world positions are normalised for the position head.
        visible_threshold: below this probability of being seen, an object is reported unknown.
        min_confidence: below this probability of its best location class, an object is reported unknown.
        arch: "keypoints" (spatial-softmax keypoints per camera: where things are, in few numbers) or "flat"
            (strided convolutions flattened: more parameters, memorises layouts when data is scarce).
        keypoints: keypoints per camera (arch "keypoints", and the drawer/holding branch of "segment").
        segment_classes: per-pixel classes of arch "segment" ("other" first, then objects and anchors by name).
        anchors: the fixed-shape supports whose positions relations are measured from (arch "segment").
        front_camera: the front camera's eye (3), target (3) and vertical field of view in degrees: how depth
            pixels back-project to the world (arch "segment").
        segment_dilations: dilation of each 3x3 layer of the segmenter (arch "segment"): its context.
        segment_camera_norms: the segmenter keeps batch-norm statistics per camera (arch "segment"; False in the
            first checkpoints, which shared one set between both cameras).
        relation_dropout: dropout between the relation classifier's layers while it trains (arch "segment"):
            it learns from a few dozen layouts, and dropout keeps it from learning them by heart.
        wrist_camera: the wrist camera's eye offset (3), target offset (3) in the grasp-point frame and its
            field of view (arch "segment"): with it, wrist pixels back-project to the world too (the pose
            follows from proprioception), and a class the front camera barely sees takes its centre from the
            wrist camera. Empty (the first checkpoints): front-camera centres only.
        wrist_fallback_pixels: below this many front pixels (counted at the wrist camera's resolution) a class
            takes the wrist camera's centre, if the wrist camera sees at least as many of its pixels.
        heading_objects: objects whose heading (yaw) the estimator reads from the shape of their pixels (arch
            "segment"; `perception.heading`: the mug's handle). Empty (the first checkpoints): no headings.
        heading_bins, heading_radius: the heading features' histogram cells per axis and half-width (metres).
    """

    objects: tuple[str, ...]
    locations: tuple[str, ...]
    containers: tuple[str, ...] = ("bowl", "drawer")
    image_size: int = 64
    front_image_size: int = 0
    input_size: int = 64
    width: int = 32
    touch_size: int = 38
    proprio_size: int = 21
    position_centre: tuple[float, float, float] = (0.5, 0.0, 0.1)
    position_scale: tuple[float, float, float] = (0.25, 0.25, 0.1)
    visible_threshold: float = 0.5
    min_confidence: float = 0.0
    arch: str = "keypoints"
    keypoints: int = 16
    segment_classes: tuple[str, ...] = ()
    anchors: tuple[str, ...] = ("bowl", "plate")
    front_camera: tuple[float, ...] = (1.0, -0.45, 0.75, 0.45, 0.0, 0.0, 55.0)
    segment_dilations: tuple[int, ...] = (1, 2, 4)
    segment_camera_norms: bool = False
    relation_dropout: float = 0.0
    wrist_camera: tuple[float, ...] = ()
    wrist_fallback_pixels: float = 4.0
    heading_objects: tuple[str, ...] = ()
    heading_bins: int = 8
    heading_radius: float = 0.08

    def __post_init__(self) -> None:
        if not self.objects or not self.locations:
            raise InputError("an estimator needs at least one object and one location class")
        if HELD not in self.locations:
            raise InputError(f"locations must include {HELD!r}, got {list(self.locations)}")
        if UNKNOWN in self.locations:
            raise InputError(f"{UNKNOWN!r} is the estimator's answer when it cannot see, not a location class")
        if self.arch not in ("keypoints", "flat", "segment"):
            raise InputError(f"arch must be 'keypoints', 'flat' or 'segment', got {self.arch!r}")
        if self.arch == "segment":
            missing = [name for name in (*self.objects, *self.anchors) if name not in self.segment_classes]
            if missing or not self.segment_classes:
                raise InputError(f"arch 'segment' needs segment_classes naming every object and anchor; missing "
                                 f"{missing} from {list(self.segment_classes)}")
            if len(self.front_camera) != 7:
                raise InputError(f"front_camera is eye (3), target (3), fov: 7 numbers, got {len(self.front_camera)}")
            if self.wrist_camera and len(self.wrist_camera) != 7:
                raise InputError(f"wrist_camera is eye offset (3), target offset (3), fov: 7 numbers (or none), got "
                                 f"{len(self.wrist_camera)}")
        if self.heading_objects and (self.arch != "segment" or not set(self.heading_objects) <= set(self.objects)):
            raise InputError(f"heading_objects must be objects of an arch 'segment' estimator; got "
                             f"{list(self.heading_objects)} with arch {self.arch!r} and objects {list(self.objects)}")
        if self.image_size % self.input_size or self.front_size % self.input_size or self.input_size < 16:
            raise InputError(f"input_size must divide image_size and front_image_size and be >= 16, got "
                             f"{self.input_size} / {self.image_size}, {self.front_size}")

    @property
    def front_size(self) -> int:
        """Side of the front camera's images."""
        return self.front_image_size or self.image_size

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (lists for tuples), the form saved next to the weights."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EstimatorConfig:
        """The config saved by `to_json`; unknown keys are an error (a file from another format)."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown estimator config keys {sorted(unknown)}")
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


def _camera_stem(width: int, size: int) -> tuple[nn.Sequential, int]:
    """Strided convolutions down to a 4x4 map, flattened: where things are in the image matters."""
    layers: list[nn.Module] = []
    channels, current = 4, width
    while size > 4:
        layers += [nn.Conv2d(channels, current, 3, stride=2, padding=1), nn.BatchNorm2d(current), nn.GELU()]
        channels, current, size = current, min(current * 2, width * 4), size // 2
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), channels * size * size


class KeypointStem(nn.Module):
    """Two convolutions, then a spatial softmax per channel (Levine et al., 2016).

    Each of `keypoints` channels becomes where it fires in the image (expected x, y in [-1, 1]), how far away
    that is (expected depth under the same softmax) and how strongly it fires (its max logit); plus the
    average-pooled feature map. A few numbers per keypoint generalise across layouts, where flattened maps
    learn each layout by heart.
    """

    def __init__(self, width: int, keypoints: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(4, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.GELU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.GELU(),
        )
        self.heat = nn.Conv2d(2 * width, keypoints, 1)
        self.size = 4 * keypoints + 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 4, H, W) normalised RGB-D into (B, `size`) features."""
        features = self.convs(x)
        logits = self.heat(features)
        h, w = logits.shape[-2:]
        attention = torch.softmax(logits.flatten(2), dim=-1)  # (B, K, H*W)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        depth = F.avg_pool2d(x[:, 3:4], x.shape[-1] // w).flatten(1)  # (B, H*W), same resolution as the map
        expected_x = (attention * grid_x.reshape(1, 1, -1)).sum(-1)
        expected_y = (attention * grid_y.reshape(1, 1, -1)).sum(-1)
        expected_depth = (attention * depth.unsqueeze(1)).sum(-1)
        strength = logits.flatten(2).amax(-1)
        return torch.cat([expected_x, expected_y, expected_depth, strength, features.mean((2, 3))], dim=-1)


class SceneEstimatorNet(nn.Module):
    """Two camera stems (front, wrist), a touch+proprio MLP, a shared trunk and one head per fact type.

    The camera stems are spatial-softmax keypoint nets (arch "keypoints") or strided convolutions flattened
    (arch "flat").

    Outputs (a dict of tensors): ``location`` logits (B, objects, locations), ``visible`` logits (B, objects),
    ``position`` normalised (B, objects, 3), ``drawer`` and ``holding`` logits (B,).
    """

    def __init__(self, config: EstimatorConfig, hidden: int = 256) -> None:
        super().__init__()
        self.config = config
        self.pool = config.image_size // config.input_size
        self.front_pool = config.front_size // config.input_size
        if config.arch == "keypoints" or config.arch == "segment":
            self.front, self.wrist = (KeypointStem(config.width, config.keypoints) for _ in range(2))
            front_size = wrist_size = self.front.size
        else:
            self.front, front_size = _camera_stem(config.width, config.input_size)
            self.wrist, wrist_size = _camera_stem(config.width, config.input_size)
        self.body = nn.Sequential(nn.Linear(config.touch_size + config.proprio_size, 64), nn.GELU())
        self.trunk = nn.Sequential(nn.Linear(front_size + wrist_size + 64, hidden), nn.GELU(),
                                   nn.Linear(hidden, hidden), nn.GELU())
        n, k = len(config.objects), len(config.locations)
        self.flags = nn.Linear(hidden, 2)
        if config.arch == "segment":
            self._build_segment_heads(config, k)
            return
        self.location = nn.Linear(hidden, n * k)
        self.visible = nn.Linear(hidden, n)
        self.position = nn.Linear(hidden, n * 3)

    def _build_segment_heads(self, config: EstimatorConfig, k: int) -> None:
        """Arch "segment": a shared per-pixel segmenter, then a classifier over relative geometry per object."""
        classes = config.segment_classes
        self.segmenter = SegmenterNet(len(classes), config.width, dilations=config.segment_dilations,
                                      cameras=2 if config.segment_camera_norms else 1)
        self.object_classes = [classes.index(name) for name in config.objects]
        self.anchor_classes = [classes.index(name) for name in config.anchors]
        eye, target, fov = config.front_camera[:3], config.front_camera[3:6], config.front_camera[6]
        rays = PinholeCamera(tuple(eye), tuple(target), float(fov)).rays(config.front_size)  # type: ignore[arg-type]
        self.register_buffer("rays", torch.from_numpy(rays), persistent=False)
        size = relation_feature_size(len(config.objects), len(config.anchors))
        # Standardisation of the relation features (metres, counts, probabilities: very different scales),
        # fitted on the training frames and saved with the weights.
        self.register_buffer("feature_mean", torch.zeros(size))
        self.register_buffer("feature_std", torch.ones(size))
        drop = config.relation_dropout
        self.relations = nn.Sequential(  # dropout layers only when asked: checkpoints without them keep loading
            nn.Linear(size, 128), nn.GELU(), *([nn.Dropout(drop)] if drop else []),
            nn.Linear(128, 128), nn.GELU(), *([nn.Dropout(drop)] if drop else []), nn.Linear(128, k + 4))
        self.heading_classes = [classes.index(name) for name in config.heading_objects]
        if config.heading_objects:  # only then: checkpoints without a heading head keep loading
            self.heading = HeadingHead(config.heading_bins)

    def _image(self, rgb: torch.Tensor, depth: torch.Tensor, pool: int) -> torch.Tensor:
        """(B, H, W, 3) uint8 and (B, H, W, 1) metres into a normalised (B, 4, H / pool, W / pool) tensor."""
        x = torch.cat([rgb.float() / 255.0, (depth.float() - DEPTH_CENTRE) / DEPTH_SCALE], dim=-1)
        x = x.permute(0, 3, 1, 2)
        return F.avg_pool2d(x, pool) if pool > 1 else x

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits and normalised positions for a batch of observations (keys as in `SENSES`)."""
        if self.config.arch == "segment":
            perceived = self.perceive(batch)
            out = {**self.relate(perceived["features"], perceived["centres"]), **perceived}
            if "heading_features" in perceived:
                out["heading"] = self.heading(perceived["heading_features"])
            return out
        touch = batch["touch"].float()
        body = torch.cat([torch.sign(touch) * torch.log1p(touch.abs()), batch["proprio"].float()], dim=-1)
        features = torch.cat([self.front(self._image(batch["rgb_front"], batch["depth_front"], self.front_pool)),
                              self.wrist(self._image(batch["rgb_wrist"], batch["depth_wrist"], self.pool)),
                              self.body(body)], dim=-1)
        h = self.trunk(features)
        n, k = len(self.config.objects), len(self.config.locations)
        flags = self.flags(h)
        return {"location": self.location(h).view(-1, n, k), "visible": self.visible(h),
                "position": self.position(h).view(-1, n, 3), "drawer": flags[:, 0], "holding": flags[:, 1]}


    def _flags(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        touch = batch["touch"].float()
        body = torch.cat([torch.sign(touch) * torch.log1p(touch.abs()), batch["proprio"].float()], dim=-1)
        features = torch.cat([self.front(self._image(batch["rgb_front"], batch["depth_front"], self.front_pool)),
                              self.wrist(self._image(batch["rgb_wrist"], batch["depth_wrist"], self.pool)),
                              self.body(body)], dim=-1)
        return self.flags(self.trunk(features))

    def perceive(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Arch "segment", first stage: segment both cameras, read drawer and holding, build relation features.

        No gradient flows through the features: the argmax masks cut it, so the segmenter learns from its
        own per-pixel loss only.
        """
        points = self.rays.unsqueeze(0) * batch["depth_front"].float()
        points = points + torch.tensor(self.config.front_camera[:3], device=points.device)
        front = _full_image(batch["rgb_front"], batch["depth_front"], points[..., 2])
        wrist = _full_image(batch["rgb_wrist"], batch["depth_wrist"], None)
        segment_front, segment_wrist = self.segmenter(front, FRONT), self.segmenter(wrist, WRIST)
        flags = self._flags(batch)
        with torch.no_grad():
            counts, centres = class_statistics(segment_front, points)
            present, wrist_points = None, None
            if self.config.wrist_camera:
                eye, rays = wrist_rays(batch["proprio"].float(), self.config.wrist_camera, self.config.image_size)
                wrist_points = eye[:, None, None] + batch["depth_wrist"].float() * rays
                wrist_counts, wrist_centres = class_statistics(segment_wrist, wrist_points)
                # front pixels in wrist-resolution units, so the threshold does not change with the front's size
                front_counts = counts * (self.config.image_size / self.config.front_size) ** 2
                minimum = self.config.wrist_fallback_pixels
                centres = fall_back_to_wrist(front_counts, centres, wrist_counts, wrist_centres, minimum, minimum)
                present = (counts >= 1.0) | (wrist_counts >= minimum)
            else:
                wrist_counts = torch.nn.functional.one_hot(segment_wrist.argmax(1), segment_wrist.shape[1]).sum((1, 2))
            features = relation_features(counts, centres, wrist_counts.float(), self.object_classes,
                                         self.anchor_classes, batch["proprio"].float(),
                                         torch.sigmoid(flags[:, 0]), torch.sigmoid(flags[:, 1]), present)
            anchors_seen = (counts >= 1.0) if present is None else present
            front_share = counts * (self.config.image_size / self.config.front_size) ** 2
            extra = {}
            if self.heading_classes:
                wrist = None if wrist_points is None else \
                    (segment_wrist.argmax(1).flatten(1), wrist_points.flatten(1, 2))
                extra["heading_features"] = heading_features(
                    (segment_front.argmax(1).flatten(1), points.flatten(1, 2)), wrist, self.heading_classes,
                    self.config.heading_bins, self.config.heading_radius)
        return {**extra, "segment_front": segment_front, "segment_wrist": segment_wrist, "drawer": flags[:, 0],
                "holding": flags[:, 1], "features": features, "centres": centres[:, self.object_classes],
                "anchor_centres": centres[:, self.anchor_classes], "anchor_seen": anchors_seen[:, self.anchor_classes],
                "anchor_pixels": front_share[:, self.anchor_classes]}

    def relate(self, features: torch.Tensor, centres: torch.Tensor) -> dict[str, torch.Tensor]:
        """Arch "segment", second stage: location logits, visibility logit and position per object."""
        k = len(self.config.locations)
        out = self.relations((features - self.feature_mean) / self.feature_std)
        scale = torch.tensor(self.config.position_scale, device=out.device)
        centre = torch.tensor(self.config.position_centre, device=out.device)
        return {"location": out[..., :k], "visible": out[..., k],
                "position": (centres - centre) / scale + out[..., k + 1:]}


def _full_image(rgb: torch.Tensor, depth: torch.Tensor, height: torch.Tensor | None) -> torch.Tensor:
    """Segmenter input at full resolution: (B, 5, H, W) normalised RGB, depth and height above the table.

    Args:
        rgb: (B, H, W, 3) uint8.
        depth: (B, H, W, 1) metres.
        height: (B, H, W) metres above the table, or None where the camera's pose is unknown (channel of zeros).
    """
    if height is None:
        height = torch.zeros(depth.shape[:-1], device=depth.device)
    x = torch.cat([rgb.float() / 255.0, (depth.float() - DEPTH_CENTRE) / DEPTH_SCALE,
                   height.unsqueeze(-1).float() / HEIGHT_SCALE], dim=-1)
    return x.permute(0, 3, 1, 2)


@dataclass(frozen=True)
class ObjectEstimate:
    """What the estimator believes about one object."""

    name: str
    location: str
    """A location class, or ``unknown`` when the object is not seen or the estimator is unsure."""
    confidence: float
    """Probability of `location` (for unknown: of the best class it withheld)."""
    visible: float
    """Probability that the cameras see the object."""
    position: tuple[float, float, float]
    best_guess: str
    """The most likely location class, even when `location` is unknown (for memory and for diagnosis)."""

    def to_json(self) -> dict[str, Any]:
        """This object's estimate as plain JSON (rounded to 4 decimals)."""
        return {"location": self.location, "confidence": round(self.confidence, 4), "visible": round(self.visible, 4),
                "position": [round(v, 4) for v in self.position], "best_guess": self.best_guess}


@dataclass(frozen=True)
class SceneEstimate:
    """The perceived scene: per-object estimates, the drawer and the gripper, each with a confidence."""

    objects: dict[str, ObjectEstimate]
    drawer_open: bool
    drawer_confidence: float
    holding: bool
    holding_confidence: float
    containers: tuple[str, ...] = ("bowl", "drawer")
    seconds: float = field(default=0.0, compare=False)
    anchors: dict[str, tuple[float, float, float] | None] = field(default_factory=dict)
    """Median world point of each anchor's (bowl, plate) pixels, None where no camera sees it (arch "segment").
    A median of the visible surface, not the body's origin: the rim and the inside of the bowl lift it."""
    anchor_pixels: dict[str, float] = field(default_factory=dict)
    """How many front-camera pixels (at the wrist camera's resolution) each anchor showed: the more, the better
    its median (the arm over the bowl hides part of it and drags its median)."""
    headings: dict[str, tuple[float, float]] = field(default_factory=dict)
    """(yaw in radians, confidence in [0, 1]) of each object whose heading the estimator reads and sees (the mug's
    handle side; `EstimatorConfig.heading_objects`); an object no camera sees has none."""

    @property
    def unknown(self) -> list[str]:
        """Objects whose location the estimator does not know."""
        return [name for name, estimate in self.objects.items() if estimate.location == UNKNOWN]

    def location_fact(self, name: str) -> list[str] | None:
        """The planner-vocabulary fact for one object's location (None: unknown or nowhere)."""
        location = self.objects[name].location
        if location in (UNKNOWN, NOWHERE):
            return None
        if location == HELD:
            return ["holding", name]
        if location in self.containers:
            return ["in", name, location]
        return ["on", name, location.removeprefix("on_")]

    def facts(self) -> list[list[str]]:
        """The scene in the planner's vocabulary, in the oracle's order; an unknown object reads ``["unknown", x]``.

        The planner fills an unknown from memory where it can, and otherwise looks where the cameras cannot
        see (`agent.symbolic`: the closed drawer).
        """
        facts = [fact for name in self.objects if (fact := self.location_fact(name)) is not None]
        facts += [["unknown", name] for name in self.unknown]
        if not self.holding:
            facts.append(["gripper_empty"])
        facts.append(["open", "drawer"] if self.drawer_open else ["closed", "drawer"])
        return facts

    def confidences(self) -> dict[str, float]:
        """Confidence of each emitted fact, keyed by its text ("in red_block bowl", "open drawer", ...)."""
        out = {}
        for name, estimate in self.objects.items():
            fact = self.location_fact(name)
            if fact is not None:
                out[" ".join(fact)] = estimate.confidence
        if not self.holding:
            out["gripper_empty"] = self.holding_confidence
        out[f"{'open' if self.drawer_open else 'closed'} drawer"] = self.drawer_confidence
        return out

    def to_json(self) -> dict[str, Any]:
        """The whole scene estimate as plain JSON: objects, drawer and holding, each with its confidence."""
        return {"objects": {name: e.to_json() for name, e in self.objects.items()},
                "drawer": {"open": self.drawer_open, "confidence": round(self.drawer_confidence, 4)},
                "holding": {"holding": self.holding, "confidence": round(self.holding_confidence, 4)},
                "unknown": self.unknown, "facts": self.facts(), "seconds": round(self.seconds, 5),
                **({"headings": {name: {"yaw": round(yaw, 4), "confidence": round(confidence, 4)}
                                 for name, (yaw, confidence) in self.headings.items()}} if self.headings else {})}


def check_observation(obs: Mapping[str, Any], config: EstimatorConfig) -> None:
    """Refuse privileged keys and missing or misshapen senses, naming what was expected and what came."""
    privileged = [key for key in PRIVILEGED_KEYS if key in obs]
    if privileged:
        raise InputError(f"the scene estimator refuses privileged observation keys {privileged}: it must perceive "
                         f"the scene from {list(SENSES)} only")
    expected = expected_shapes(config)
    missing = [key for key in SENSES if key not in obs]
    if missing:
        raise InputError(f"observation lacks {missing}: the scene estimator needs an rgbd_touch observation with "
                         f"{list(SENSES)} (got keys {sorted(obs)})")
    for key in SENSES:
        shape = tuple(np.shape(obs[key]))
        if shape != expected[key] and shape[1:] != expected[key]:
            raise InputError(f"observation {key!r} has shape {shape}, but this estimator expects {expected[key]} "
                             f"(or a batch of them): was it trained at another image size?")


def expected_shapes(config: EstimatorConfig) -> dict[str, tuple[int, ...]]:
    """The shape of each sense an estimator with `config` reads (one observation, no batch dimension)."""
    size, front = config.image_size, config.front_size
    return {"rgb_front": (front, front, 3), "depth_front": (front, front, 1), "rgb_wrist": (size, size, 3),
            "depth_wrist": (size, size, 1), "touch": (config.touch_size,), "proprio": (config.proprio_size,)}


class SceneEstimator:
    """A trained `SceneEstimatorNet` plus the decoding rules: facts, confidences and the unknown rule."""

    def __init__(self, config: EstimatorConfig, net: SceneEstimatorNet | None = None) -> None:
        self.config = config
        self.net = (net or SceneEstimatorNet(config)).eval()
        self._memo: tuple[int, SceneEstimate] | None = None

    # ---------------------------------------------------------------------------------- inference
    def batch_tensors(self, obs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The six senses of one observation (or a batch) as tensors with a batch dimension."""
        check_observation(obs, self.config)
        expected = expected_shapes(self.config)
        out = {}
        for key in SENSES:
            value = torch.as_tensor(np.asarray(obs[key]))
            out[key] = value.unsqueeze(0) if tuple(value.shape) == expected[key] else value
        return out

    @torch.no_grad()
    def probabilities(self, obs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Class probabilities and positions for a batch (or one observation, given a batch of one)."""
        outputs = self.net(self.batch_tensors(obs))
        scale = torch.tensor(self.config.position_scale)
        centre = torch.tensor(self.config.position_centre)
        return {"location": torch.softmax(outputs["location"], dim=-1).numpy(),
                "visible": torch.sigmoid(outputs["visible"]).numpy(),
                "position": (outputs["position"] * scale + centre).numpy(),
                "drawer": torch.sigmoid(outputs["drawer"]).numpy(),
                "holding": torch.sigmoid(outputs["holding"]).numpy(),
                **({"anchors": outputs["anchor_centres"].numpy(), "anchor_seen": outputs["anchor_seen"].numpy(),
                    "anchor_pixels": outputs["anchor_pixels"].numpy()} if "anchor_centres" in outputs else {}),
                **({"heading": outputs["heading"].numpy(),
                    "heading_seen": heading_seen(outputs["heading_features"]).numpy()} if "heading" in outputs else {})}

    def estimate(self, obs: Mapping[str, Any]) -> SceneEstimate:
        """What one observation shows (the observation must not carry a batch dimension).

        The last answer is kept, keyed by the senses' bytes: in the agent's loop the perceiving world (checking a
        skill's effect) and a perceived-state skill (acting) ask about the same observation at every step, and
        the second asks for free.
        """
        started = time.perf_counter()
        check_observation(obs, self.config)
        memo_key = hash(tuple(np.ascontiguousarray(obs[name]).tobytes() for name in SENSES))
        if self._memo is not None and self._memo[0] == memo_key:
            return self._memo[1]
        probs = self.probabilities(obs)
        if probs["drawer"].shape[0] != 1:
            raise ValueError(f"estimate takes one observation, got a batch of {probs['drawer'].shape[0]}; "
                             "use estimate_batch")
        estimate = replace(self.decode({key: value[0] for key, value in probs.items()}),
                           seconds=time.perf_counter() - started)
        self._memo = (memo_key, estimate)
        return estimate

    def estimate_batch(self, obs: Mapping[str, Any]) -> list[SceneEstimate]:
        """`estimate` for every observation of a batch."""
        probs = self.probabilities(obs)
        return [self.decode({key: value[i] for key, value in probs.items()}) for i in range(len(probs["drawer"]))]

    def decode(self, probs: Mapping[str, np.ndarray]) -> SceneEstimate:
        """Facts from one observation's probabilities.

        Rules: the gripper holds something when the holding head says so (touch makes it reliable), and
        then exactly the object most likely held is `held`; no other object may be. An object that is
        unlikely to be seen, or whose best class is below `min_confidence`, is `unknown` (a held object is
        felt by the fingers, so it is reported even when the wrist camera's view of it is poor).
        """
        config = self.config
        locations = np.asarray(probs["location"], dtype=np.float64)
        held_index = config.locations.index(HELD)
        holding_p = float(probs["holding"])
        holding = holding_p >= 0.5
        held_object = int(np.argmax(locations[:, held_index])) if holding else -1
        objects = {}
        for i, name in enumerate(config.objects):
            p = locations[i].copy()
            if i == held_object:
                index = held_index
            else:
                p[held_index] = 0.0
                p /= max(p.sum(), 1e-12)
                index = int(np.argmax(p))
            best, confidence = config.locations[index], float(p[index])
            visible = float(probs["visible"][i])
            seen = visible >= config.visible_threshold or i == held_object
            location = best if seen and confidence >= config.min_confidence else UNKNOWN
            position = tuple(float(v) for v in probs["position"][i])
            objects[name] = ObjectEstimate(name, location, confidence, visible, position, best)  # type: ignore[arg-type]
        drawer_p = float(probs["drawer"])
        anchors: dict[str, tuple[float, float, float] | None] = {}
        pixels: dict[str, float] = {}
        if "anchors" in probs:
            for i, name in enumerate(config.anchors):
                seen = bool(probs["anchor_seen"][i])
                anchors[name] = tuple(float(v) for v in probs["anchors"][i]) if seen else None  # type: ignore[assignment]
                pixels[name] = float(probs["anchor_pixels"][i])
        headings: dict[str, tuple[float, float]] = {}
        for i, name in enumerate(config.heading_objects if "heading" in probs else ()):
            if bool(probs["heading_seen"][i]):
                sin, cos = (float(v) for v in probs["heading"][i])
                headings[name] = (float(np.arctan2(sin, cos)), min(1.0, float(np.hypot(sin, cos))))
        return SceneEstimate(objects, drawer_p >= 0.5, max(drawer_p, 1 - drawer_p), holding,
                             max(holding_p, 1 - holding_p), config.containers, anchors=anchors, anchor_pixels=pixels,
                             headings=headings)

    # -------------------------------------------------------------------------------- checkpoints
    def save(self, path: str | Path, card: Mapping[str, Any] | None = None) -> Path:
        """Write the weights (`path`, a torch state_dict) and `path.json` (config + card), both atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "config": self.config.to_json(), "card": dict(card or {})}
        atomic_write(path, lambda tmp: torch.save(self.net.state_dict(), tmp), shared_mode=True)
        atomic_write(config_path(path), lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=1)), shared_mode=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SceneEstimator:
        """An estimator saved by `save`; weights are read with ``weights_only=True`` (no code runs)."""
        path = Path(path)
        meta_path = config_path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no scene-estimator checkpoint at {path}")
        if not meta_path.is_file():
            raise FileNotFoundError(f"scene-estimator checkpoint {path} has no config next to it ({meta_path})")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as error:
            raise InputError(f"{meta_path} is not valid JSON: {error}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise InputError(f"{meta_path} is not a scene-estimator config: expected format {FORMAT!r}, "
                             f"found {found!r}")
        config = EstimatorConfig.from_json(meta["config"])
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise InputError(f"{path} is not a readable torch state_dict: {error}") from None
        net = SceneEstimatorNet(config)
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as error:
            raise InputError(f"{path} does not fit the network its config describes: {error}") from None
        estimator = cls(config, net)
        estimator.card = meta.get("card", {})
        return estimator

    card: dict[str, Any] = {}  # noqa: RUF012 - replaced per instance by `load`


def config_path(weights: str | Path) -> Path:
    """Where the JSON config of a weights file lives: ``<weights>.json``."""
    weights = Path(weights)
    return weights.with_name(weights.name + ".json")


def parameter_count(net: nn.Module) -> int:
    """Trainable parameters (the size a checkpoint has: 4 bytes each)."""
    return sum(p.numel() for p in net.parameters())
