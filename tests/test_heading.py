"""The mug's heading from its pixels (perception.heading): features, the estimator's head, and the rows that use it.

The place_on student leans on the mug's yaw, which perceived rows lacked; the heading head reads the handle's side
from where the mug's back-projected pixels lie around their median. These tests pin the features' geometry, the
head's wiring in the estimator (config, outputs, checkpoints), and that perceived rows carry a heading only where
a card asks for it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from agent.perceived_state import ROWS, PerceivedObjectRows, RowGeometry, perceived_policy
from agent.skills import MOVABLE
from perception.errors import InputError
from perception.heading import camera_heading_features, heading_features, seen
from perception.scene_estimator import SHIPPED_WEIGHTS, ObjectEstimate, SceneEstimate, SceneEstimator

CABINET = (0.62, 0.30, 0.0)
MUG = 3


@pytest.fixture(scope="module")
def shipped() -> SceneEstimator:
    return SceneEstimator.load(SHIPPED_WEIGHTS)


def mug_points(handle_side: float, rng: np.random.Generator) -> torch.Tensor:
    """A cylinder's visible points around (0.5, 0) plus a handle sticking out along x on `handle_side` (+1 / -1)."""
    angle = rng.uniform(0, 2 * math.pi, 300)
    body = np.stack([0.5 + 0.032 * np.cos(angle), 0.032 * np.sin(angle), rng.uniform(0.0, 0.08, 300)], 1)
    handle = np.stack([0.5 + handle_side * rng.uniform(0.035, 0.055, 60), rng.uniform(-0.005, 0.005, 60),
                       rng.uniform(0.02, 0.06, 60)], 1)
    return torch.from_numpy(np.concatenate([body, handle])).float()


def features_of(points: torch.Tensor, extra_other: int = 40) -> torch.Tensor:
    """Front-camera features of `points` labelled as the mug, among pixels of another class far away."""
    labels = torch.cat([torch.full((points.shape[0],), MUG), torch.zeros(extra_other, dtype=torch.long)])
    others = torch.full((extra_other, 3), 5.0)
    return camera_heading_features(labels[None], torch.cat([points, others])[None], MUG, 8, 0.08)[0]


def test_the_handles_side_shows_in_the_features_and_mirrors() -> None:
    """A mug mirrored along x (its handle on the other side) gives the x-mirrored histogram, and the two differ."""
    points = mug_points(1.0, np.random.default_rng(0))
    mirrored = points.clone()
    mirrored[:, 0] = 1.0 - mirrored[:, 0]
    plus, minus = features_of(points), features_of(mirrored)
    grid_plus, grid_minus = plus[:-1].view(8, 8), minus[:-1].view(8, 8)
    assert math.isclose(float(grid_plus.sum()), 1.0, abs_tol=1e-5)  # every mug point lies in the window
    # x-major cells; a few points move a cell where the median (the lower middle point) or a cell edge is not mirrored
    assert torch.allclose(grid_minus, grid_plus.flip(0), atol=0.012)
    assert float((grid_plus - grid_minus).abs().sum()) > 0.2
    assert float(plus[-1]) == pytest.approx(math.log1p(360) / 5)


def test_a_class_no_camera_sees_has_zero_features_and_is_not_seen() -> None:
    labels = torch.zeros(1, 50, dtype=torch.long)
    points = torch.rand(1, 50, 3)
    both = heading_features((labels, points), (labels, points), [MUG], 8, 0.08)
    assert both.shape == (1, 1, 130) and float(both.abs().sum()) == 0.0
    assert not bool(seen(both)[0, 0])
    wrist_only = heading_features((labels, points), (torch.full((1, 50), MUG), points), [MUG], 8, 0.08)
    assert bool(seen(wrist_only)[0, 0])


def test_the_heading_head_learns_the_handles_side_from_such_features(shipped: SceneEstimator) -> None:
    from experiments.scene_estimation.heading import fit_heading, heading_report, with_heading_head

    rng = np.random.default_rng(1)
    sides = np.array([1.0, -1.0] * 40)
    rows = [torch.cat([features_of(mug_points(side, rng)), torch.zeros(65)]).numpy() for side in sides]
    frames = {"features": np.stack(rows).astype(np.float32),
              "target": np.stack([sides, np.zeros_like(sides)], 1).astype(np.float32),
              "held": np.zeros(len(sides), np.int32)}
    estimator = with_heading_head(shipped)
    before = heading_report(estimator, frames)["all"]["side_right"]
    fit_heading(estimator, frames, epochs=200)
    after = heading_report(estimator, frames)
    assert after["all"]["side_right"] == len(sides) and after["all"]["median_error_deg"] < 20
    assert before < len(sides)  # an untrained head does not get every side right by construction


def test_an_estimator_with_a_heading_head_reports_headings_and_round_trips(shipped: SceneEstimator,
                                                                           tmp_path) -> None:
    from experiments.scene_estimation.heading import with_heading_head

    estimator = with_heading_head(shipped)
    assert estimator.config.heading_objects == ("mug",)
    probs = {key: value[0] for key, value in estimator.probabilities(observation(estimator)).items()}
    assert probs["heading"].shape == (1, 2)
    probs["heading"], probs["heading_seen"] = np.array([[0.6, 0.0]]), np.array([True])
    yaw, confidence = estimator.decode(probs).headings["mug"]
    assert yaw == pytest.approx(math.pi / 2) and confidence == pytest.approx(0.6)
    probs["heading_seen"] = np.array([False])
    assert "mug" not in estimator.decode(probs).headings  # unseen: no heading, not a guess
    path = estimator.save(tmp_path / "estimator.pt")
    again = SceneEstimator.load(path)
    assert again.config.heading_objects == ("mug",)
    for key, value in estimator.net.heading.state_dict().items():
        assert torch.equal(value, again.net.heading.state_dict()[key])
    assert not shipped.config.heading_objects or "heading" in shipped.card  # shipped: trained, or none at all


def test_heading_objects_must_be_objects_of_a_segmenting_estimator(shipped: SceneEstimator) -> None:
    with pytest.raises(InputError, match="heading_objects must be objects"):
        replace(shipped.config, heading_objects=("plate",))
    with pytest.raises(InputError, match="heading_objects must be objects"):
        replace(shipped.config, arch="keypoints", heading_objects=("mug",))


def observation(estimator: SceneEstimator) -> dict[str, np.ndarray]:
    from perception.scene_estimator import expected_shapes

    shapes = expected_shapes(estimator.config)
    return {key: np.zeros(shape, np.uint8 if key.startswith("rgb_") else np.float32) + (1.0 if "depth" in key else 0)
            for key, shape in shapes.items()}


def estimate_with(heading: dict[str, tuple[float, float]]) -> SceneEstimate:
    objects = {name: ObjectEstimate(name, "table", 0.9, 0.9, (0.4, 0.0, 0.02), "table") for name in MOVABLE}
    return SceneEstimate(objects, False, 0.9, False, 0.9, headings=heading)


def test_rows_carry_the_perceived_heading_only_where_the_card_asks(shipped: SceneEstimator) -> None:
    from experiments.scene_estimation.heading import with_heading_head

    estimator = with_heading_head(shipped)
    grasp = np.zeros(3)
    mug = ROWS.index("mug")
    rows = PerceivedObjectRows(estimator, RowGeometry(CABINET, headings=True))
    seen_row = rows.rows(estimate_with({"mug": (-math.pi / 2, 0.9)}), grasp)[:56].reshape(7, 8)
    assert np.allclose(seen_row[mug, 3:5], [-1.0, 0.0], atol=1e-6)
    assert all(seen_row[i, 3:5].tolist() == [0.0, 1.0] for i in range(7) if i != mug)
    hidden_row = rows.rows(estimate_with({}), grasp)[:56].reshape(7, 8)  # no camera sees it: the last heading
    assert np.allclose(hidden_row[mug, 3:5], [-1.0, 0.0], atol=1e-6)
    rows.reset()
    assert rows.rows(estimate_with({}), grasp)[:56].reshape(7, 8)[mug, 3:5].tolist() == [0.0, 1.0]
    plain = PerceivedObjectRows(estimator, RowGeometry(CABINET))
    assert plain.rows(estimate_with({"mug": (-math.pi / 2, 0.9)}), grasp)[:56].reshape(7, 8)[mug, 3:5].tolist() == \
        [0.0, 1.0]


def test_a_card_asking_for_headings_needs_an_estimator_that_reads_them(shipped: SceneEstimator) -> None:
    blind = SceneEstimator(replace(shipped.config, heading_objects=()), shipped.net)
    with pytest.raises(ValueError, match="reads none"):
        PerceivedObjectRows(blind, RowGeometry(CABINET, headings=True))
    spec = {"estimator": "shipped", "cabinet_position": list(CABINET), "open_opening": 0.13, "anchor_offsets": {},
            "headings": "yes"}
    with pytest.raises(ValueError, match="'headings' must be true or false"):
        perceived_policy(object(), spec, Path("."), shipped)


@pytest.mark.parametrize("argv, phrase", [
    (["--seeds", "0:10", "--eval-seeds", "5:20"], "overlap"),
    (["--every", "0"], "--every, --epochs and --workers must be >= 1"),
    (["--noise", "2"], "--noise in [0, 1]"),
    (["--seeds", "5:5"], "is empty"),
])
def test_train_heading_refuses_bad_arguments_with_exit_2(tmp_path, argv, phrase, capsys) -> None:
    from experiments.cli import main

    out = tmp_path / "estimator.pt"
    assert main(["train-heading", *argv, "--out", str(out)]) == 2
    assert phrase in capsys.readouterr().err and not out.exists()


def test_train_heading_records_frames_of_the_mug_with_its_true_heading(shipped: SceneEstimator) -> None:
    """One seed's frames: the mug seen in each, held in some, the label its true (sin, cos) of yaw (unit length)."""
    from experiments.scene_estimation.heading import HEADING_CALLS, collect_heading_frames, with_heading_head

    frames = collect_heading_frames(with_heading_head(shipped), range(3, 4), every=4)
    count = len(frames["target"])
    assert count > 20 and frames["features"].shape == (count, 130)
    assert np.allclose(np.hypot(*frames["target"].T), 1.0, atol=1e-5)
    assert 0 < frames["held"].sum() < count
    assert set(frames["call"].tolist()) <= set(range(len(HEADING_CALLS))) and len(set(frames["call"].tolist())) > 3
    assert bool(seen(torch.from_numpy(frames["features"])).all())
