"""Object rows from the senses: the env contract's `objects` vector, rebuilt from what the scene estimator sees.

Why: the state skill policies are DAgger students of the privileged experts and work mid-chain, but they read
the simulator's object rows; a visuomotor student cloned from pixels alone found a block in 7 of 100 chain
starts (RESULTS.md). A modular sensorimotor student splits the two jobs, as perception-then-control pipelines
do: the scene estimator (trained on oracle labels, reading only cameras, touch and proprioception) says where
things are, and the state policy acts on those estimates instead of on the simulator's rows. Nothing
privileged reaches either network.

What the estimator cannot give, and what stands in for it:
- yaw: the estimator reports positions, and a heading only for the objects its heading head reads (the mug: its
  handle's side, `perception.heading`). Where a card opts in (`headings`, `embodia perceive-skill --headings`),
  the mug's row carries the perceived heading (the last one seen in the episode while no camera sees it); every
  other yaw reads 0 (sin 0, cos 1). The grasp never turns (control "ee").
- the drawer's opening: it says open or closed, so an open drawer reads `open_opening` metres out (the open
  skills leave it 0.12-0.15 m out) and a closed one 0.
- the bowl's and the plate's body origins: their rows take the median of their pixels (the estimator's anchor
  centres) minus a fixed offset measured on chain starts (the rim and the inside lift the bowl's median).
- an object the cameras do not see: its last perceived position in the episode, else the estimator's guess.
- an object in the hand: its pixels are what the fingers leave visible, so their back-projected centre jitters
  (a held mug's x by 3 cm, step to step) and sits high (the mug's by 1.2 cm), and a state policy that places
  by the object's offset from the hand kept correcting and never let go (the mug onto the plate: 8 of 61 calls
  fully from the senses). A held object moves with the hand, so while the estimator says it is held its row is
  the grasp point plus `HELD_OFFSETS` in x and z (y, along the fingers' closing axis, where the grasp point
  varies by +-1.5 cm, stays the perceived one), where the card opts in (`embodia perceive-skill --held-prior`).
  It is off in the shipped cards: it made the held mug's row right to 1-2 mm, yet the shipped place_on placed no
  better with it (77/100 from chain starts, 81 without); the state student leans on the objects' yaw, which
  perceived rows lack, and that, not the held row, is what left the mug over the plate.
- the bowl and the plate stand still while the arm works over them and hides part of them (which drags their
  median by 2-4 cm): each keeps the position from the frame in which the front camera saw most of it, unless a
  new frame shows it nearly as fully (`ANCHOR_KEEP`: then it is taken, so a bumped bowl is followed).

This module never imports the simulator: the cabinet's position and the row layout arrive as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from agent.errors import InputError
from agent.skills import MOVABLE
from perception.layout import GOAL_KEY
from perception.scene_estimator import (
    HELD,
    SENSES,
    SHIPPED_WEIGHTS,
    UNKNOWN,
    SceneEstimate,
    SceneEstimator,
    expected_shapes,
)

ROWS: tuple[str, ...] = (*MOVABLE, "bowl", "plate")
"""The env contract's object rows, in order (each: position, sin and cos of yaw, offset from the grasp point)."""
ROW_SIZE = 8
ANCHOR_KEEP = 0.8
ANCHOR_OFFSETS: dict[str, tuple[float, float, float]] = {"bowl": (0.0, 0.0, -0.028), "plate": (-0.012, 0.0, -0.0155)}
"""Body origin minus pixel median, measured with the shipped estimator on 40 chain starts (seeds 5000..5009 of
pick, place_in, place_on and push): bowl (-0.001, 0.001, 0.028) +- (0.013, 0.017, 0.008), plate (0.012, -0.001,
0.016) +- (0.009, 0.009, 0.000); offsets below 2 mm are left at 0."""

HELD_OFFSETS: dict[str, tuple[float, float, float]] = {
    "red_block": (0.0, 0.0, 0.0), "green_block": (0.0, 0.0, 0.0), "blue_block": (0.0, 0.0, 0.0),
    "yellow_block": (0.0, 0.0, -0.0033), "mug": (0.0, 0.0, -0.0342)}
"""Body origin minus grasp point while the scripted expert holds the object (both fingers touching), measured on
12 place_on chain starts per object (seeds 20000..20011, 241-283 held steps each): blocks (-0.0017..0.0005,
-0.0016..0, -0.0033..-0.001) +- (<= 0.005, 0.011, <= 0.006), mug (-0.0002, -0.0014, -0.0342) +- (0.0008, 0.0106,
0.0009); offsets below 2 mm are left at 0."""


@dataclass(frozen=True)
class RowGeometry:
    """What the rows need besides the estimate: the fixed cabinet and the anchors' offsets.

    Attributes:
        cabinet_position: world position of the cabinet's origin; the drawer's frame is it slid `opening` along -x.
        open_opening: metres an open drawer is taken to stand out.
        anchor_offsets: added to each anchor's pixel median to give its body origin.
        held_offsets: a held object's body origin minus the grasp point (x and z used); an object missing here
            keeps its perceived position while held (cards written before the held prior have none).
        headings: rows carry the estimator's headings (sin, cos of yaw) where it reads them; off: yaw reads 0.
    """

    cabinet_position: tuple[float, float, float]
    open_opening: float = 0.13
    anchor_offsets: Mapping[str, tuple[float, float, float]] = field(default_factory=lambda: dict(ANCHOR_OFFSETS))
    held_offsets: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    headings: bool = False


class PerceivedObjectRows:
    """Turns `rgbd_touch` observations into the `objects` vector a state policy reads, remembering what it saw.

    Args:
        estimator: the scene estimator (arch "segment": it reports the anchors' centres).
        geometry: the cabinet and anchor constants.
    """

    def __init__(self, estimator: SceneEstimator, geometry: RowGeometry) -> None:
        if tuple(estimator.config.objects) != tuple(MOVABLE) or set(estimator.config.anchors) != {"bowl", "plate"}:
            raise InputError(f"perceived object rows need an estimator of {list(MOVABLE)} with anchors bowl and plate; "
                             f"this one reports {list(estimator.config.objects)} and {list(estimator.config.anchors)}")
        if estimator.config.arch != "segment":
            raise InputError(f"perceived object rows need an arch 'segment' estimator (it gives the bowl's and the "
                             f"plate's positions), got arch {estimator.config.arch!r}")
        if geometry.headings and not estimator.config.heading_objects:
            raise InputError("the card asks for perceived headings, but this scene estimator reads none "
                             "(its config has no heading_objects); re-card it without headings or give an estimator "
                             "trained with `embodia train-heading`")
        self.estimator, self.geometry = estimator, geometry
        self._last: dict[str, np.ndarray] = {}
        self._last_heading: dict[str, tuple[float, float]] = {}
        self._best_pixels: dict[str, float] = {}
        self.last_estimate: SceneEstimate | None = None

    def reset(self) -> None:
        """Forget the positions seen so far (a new episode)."""
        self._last.clear()
        self._last_heading.clear()
        self._best_pixels.clear()
        self.last_estimate = None

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        """The float32 `objects` vector (7 rows of 8, then the drawer's opening and position) for `obs`."""
        estimate = self.estimator.estimate(obs)
        self.last_estimate = estimate
        return self.rows(estimate, np.asarray(obs["proprio"], dtype=np.float64)[:3])

    def rows(self, estimate: SceneEstimate, grasp: Sequence[float]) -> np.ndarray:
        """The vector for one estimate and the grasp point (proprio 0:3)."""
        grasp = np.asarray(grasp, dtype=np.float64)
        values: list[float] = []
        for name in ROWS:
            position = self._position(name, estimate, grasp)
            values += [*position.tolist(), *self._heading(name, estimate), *(position - grasp).tolist()]
        opening = self.geometry.open_opening if estimate.drawer_open else 0.0
        x, y, z = self.geometry.cabinet_position
        values += [opening, x - opening, y, z]
        return np.asarray(values, dtype=np.float32)

    def _heading(self, name: str, estimate: SceneEstimate) -> tuple[float, float]:
        """(sin, cos) of the object's yaw: the perceived heading where the card uses them and one was seen."""
        if not self.geometry.headings:
            return 0.0, 1.0
        if name in estimate.headings:
            yaw = estimate.headings[name][0]
            self._last_heading[name] = (float(np.sin(yaw)), float(np.cos(yaw)))
        return self._last_heading.get(name, (0.0, 1.0))

    def _position(self, name: str, estimate: SceneEstimate, grasp: np.ndarray) -> np.ndarray:
        if name in estimate.objects:
            seen = estimate.objects[name]
            if seen.location == HELD and name in self.geometry.held_offsets:
                dx, _, dz = self.geometry.held_offsets[name]
                self._last[name] = np.array([grasp[0] + dx, seen.position[1], grasp[2] + dz])
            elif seen.location != UNKNOWN:
                self._last[name] = np.asarray(seen.position, dtype=np.float64)
            return self._last.get(name, np.asarray(seen.position, dtype=np.float64))
        centre = estimate.anchors.get(name)
        pixels = estimate.anchor_pixels.get(name, 0.0)
        if centre is not None and pixels >= ANCHOR_KEEP * self._best_pixels.get(name, 0.0):
            offset = self.geometry.anchor_offsets.get(name, (0.0, 0.0, 0.0))
            self._last[name] = np.asarray(centre, dtype=np.float64) + np.asarray(offset)
            self._best_pixels[name] = max(pixels, self._best_pixels.get(name, 0.0))
        return self._last.get(name, np.zeros(3))


class RewrittenObservationPolicy:
    """Stands in for a stable-baselines3 policy whose observations are rewritten before it reads them.

    It answers the calls the agent and the evaluators make of an SB3 policy (`predict`, `obs_to_tensor`,
    `predict_values`, `observation_space`, `action_space`, `log_std`), so it drops in wherever a policy file
    would; a subclass says how an observation is rewritten (`rewrite`).
    """

    policy: Any

    def rewrite(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """What the inner policy reads for `obs`."""
        raise NotImplementedError

    @property
    def log_std(self) -> Any:
        """The inner policy's action noise (a learned skill's retries sample with it)."""
        return self.policy.log_std

    def predict(self, obs: Mapping[str, Any], deterministic: bool = True) -> tuple[np.ndarray, None]:
        """The inner policy's action on the rewritten observation."""
        return self.policy.predict(self.rewrite(obs), deterministic=deterministic)

    def obs_to_tensor(self, obs: Mapping[str, Any]) -> tuple[Any, bool]:
        """The inner policy's tensors for the rewritten observation (for `predict_values`)."""
        return self.policy.obs_to_tensor(self.rewrite(obs))

    def predict_values(self, obs_tensor: Any) -> Any:
        """The inner policy's critic."""
        return self.policy.predict_values(obs_tensor)


class PerceivedStatePolicy(RewrittenObservationPolicy):
    """A stable-baselines3 state policy behind perceived object rows: it reads `rgbd_touch` observations.

    Its observation space is the estimator's senses plus the goal: the privileged `objects` key is never read from
    the observation, only built from the estimate.

    Args:
        policy: the state policy (reads proprio, objects and goal).
        rows: the perceived-rows builder (owns the estimator).
    """

    def __init__(self, policy: Any, rows: PerceivedObjectRows) -> None:
        self.policy, self.rows = policy, rows
        self.action_space = policy.action_space
        shapes = expected_shapes(rows.estimator.config)
        inner = policy.observation_space.spaces
        senses = {key: spaces.Box(0, 255, shapes[key], np.uint8) if key.startswith("rgb_")
                  else spaces.Box(-np.inf, np.inf, shapes[key], np.float32) for key in SENSES}
        self.observation_space = spaces.Dict({**senses, GOAL_KEY: inner[GOAL_KEY]})
        self._goal_key = GOAL_KEY

    def new_episode(self) -> None:
        """Forget remembered positions: a new scene."""
        self.rows.reset()

    def rewrite(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """What the state policy reads: proprio and goal from `obs`, the object rows from the estimate."""
        proprio = np.asarray(obs["proprio"], dtype=np.float32)
        objects = self.rows(obs)  # the estimator answers a repeated observation from its memo
        return {"proprio": proprio, "objects": objects, self._goal_key: np.asarray(obs[self._goal_key])}


BLIND_YAW_KEY = "blind_yaw"
"""The card key of a state policy trained with every object's yaw read as 0 (`embodia dagger --blind-yaw`)."""
_SIN_COLUMNS = [row * ROW_SIZE + 3 for row in range(len(ROWS))]
_COS_COLUMNS = [row * ROW_SIZE + 4 for row in range(len(ROWS))]


def without_yaw(objects: np.ndarray) -> np.ndarray:
    """The `objects` vector (or a batch of them) with every row's yaw read as 0 (sin 0, cos 1).

    Why: perceived rows have no yaw, and a state student that learned from the simulator's yaw acts differently
    without it (the shipped place_on, on the simulator's rows with the yaw zeroed, placed the mug on the plate in
    2 of 6 chain starts where it placed 4 with it). A student trained on this view never leans on yaw.
    """
    out = np.array(objects, dtype=np.float32, copy=True)
    out[..., _SIN_COLUMNS] = 0.0
    out[..., _COS_COLUMNS] = 1.0
    return out


class YawBlindPolicy(RewrittenObservationPolicy):
    """A state policy trained without yaw: its object rows' yaw is read as 0 wherever it acts.

    So it sees in the loop what it saw in training (`embodia dagger --blind-yaw`).
    """

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.action_space = policy.action_space
        self.observation_space = policy.observation_space

    def rewrite(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """`obs` with its `objects` rows' yaw read as 0."""
        return {**obs, "objects": without_yaw(np.asarray(obs["objects"]))} if "objects" in obs else dict(obs)


PERCEIVED_STATE_KEY = "perceived_state"
"""The card key that makes a shipped skill a perceived-state one: which estimator, and the row geometry."""


def perceived_policy(policy: Any, spec: Mapping[str, Any], card_dir: Path,
                     estimator: SceneEstimator | None = None) -> PerceivedStatePolicy:
    """`policy` behind perceived rows as a card's `perceived_state` entry describes them.

    Args:
        policy: the loaded state policy.
        spec: ``{"estimator": "shipped" or a path (relative to the card), "cabinet_position": [x, y, z],
            "open_opening": m, "anchor_offsets": {"bowl": [dx, dy, dz], ...}}``, optionally
            ``"held_offsets": {"mug": [dx, dy, dz], ...}`` (absent: held objects keep their perceived positions) and
            ``"headings": true`` (the rows carry the estimator's headings; absent: every yaw reads 0).
        card_dir: the card's folder.
        estimator: an estimator already loaded (shared between skills); None loads the one the card names.
    """
    headings = _flag(spec.get("headings", False), "headings")
    try:
        geometry = RowGeometry(tuple(float(v) for v in spec["cabinet_position"]),  # type: ignore[arg-type]
                               float(spec["open_opening"]),
                               {str(k): tuple(float(v) for v in offset)  # type: ignore[misc]
                                for k, offset in spec["anchor_offsets"].items()},
                               {str(k): tuple(float(v) for v in offset)  # type: ignore[misc]
                                for k, offset in spec.get("held_offsets", {}).items()},
                               headings)
        named = str(spec["estimator"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(f"a card's {PERCEIVED_STATE_KEY!r} entry needs estimator, cabinet_position (3 numbers), "
                         f"open_opening and anchor_offsets; got {dict(spec)!r} ({error})") from None
    if len(geometry.cabinet_position) != 3:
        raise InputError(f"cabinet_position must be 3 numbers, got {list(geometry.cabinet_position)}")
    short = {name: list(offset) for name, offset in geometry.held_offsets.items() if len(offset) != 3}
    if short:
        raise InputError(f"held_offsets must be 3 numbers per object, got {short}")
    return PerceivedStatePolicy(policy, PerceivedObjectRows(estimator or load_estimator(named, card_dir), geometry))


def _flag(value: Any, key: str) -> bool:
    """A card's boolean entry; anything but true or false is refused (a string "false" would read as true)."""
    if not isinstance(value, bool):
        raise InputError(f"a card's {PERCEIVED_STATE_KEY!r} entry {key!r} must be true or false, got {value!r}")
    return value


def load_estimator(named: str, card_dir: Path) -> SceneEstimator:
    """The estimator a card names: "shipped" (perception's own weights) or a path relative to the card's folder."""
    return SceneEstimator.load(SHIPPED_WEIGHTS if named == "shipped" else card_dir / named)
