"""The segmenting scene estimator (arch "segment"): camera geometry, robust centres, wiring and training."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from envs.sensors import WRIST_CAMERA
from perception.scene_estimator import SENSES, EstimatorConfig, SceneEstimator
from perception.segmentation import (
    PinholeCamera,
    class_statistics,
    fall_back_to_wrist,
    relation_feature_size,
    wrist_rays,
)

OBJECTS = ("red_block", "green_block", "mug")
LOCATIONS = ("table", "bowl", "drawer", "plate", "on_red_block", "on_green_block", "held", "none")
CLASSES = ("other", *OBJECTS, "bowl", "plate")


def segment_config(size: int = 16) -> EstimatorConfig:
    return EstimatorConfig(objects=OBJECTS, locations=LOCATIONS, image_size=size, input_size=size, width=4,
                           arch="segment", segment_classes=CLASSES)


def observation(size: int = 16, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"rgb_front": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
            "depth_front": rng.uniform(0.3, 2.0, (batch, size, size, 1)).astype(np.float32),
            "rgb_wrist": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
            "depth_wrist": rng.uniform(0.05, 2.0, (batch, size, size, 1)).astype(np.float32),
            "touch": rng.normal(size=(batch, 38)).astype(np.float32),
            "proprio": rng.normal(size=(batch, 21)).astype(np.float32)}


def test_rays_back_project_a_world_point_to_where_it_is() -> None:
    """Project a world point with a textbook look-at pinhole model, then back-project its pixel's depth."""
    camera = PinholeCamera((1.0, -0.45, 0.75), (0.45, 0.0, 0.0), 55.0)
    size = 64
    rays = camera.rays(size)
    eye, target = np.array(camera.eye), np.array(camera.target)
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, (0, 0, 1.0))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    half = np.tan(np.radians(55.0) / 2)
    for point in ([0.5, 0.0, 0.0], [0.62, -0.2, 0.05], [0.4, 0.15, 0.1]):
        v = np.asarray(point) - eye
        depth = v @ forward
        col = ((v @ right) / depth / half + 1) / 2 * size - 0.5
        row = (1 - (v @ up) / depth / half) / 2 * size - 0.5
        r, c = round(row), round(col)
        back = eye + depth * rays[r, c]
        pixel = 2 * half * depth / size  # one pixel's footprint at that depth
        assert np.linalg.norm(back - point) < pixel, (point, back)
    # the optical axis passes through the image centre
    assert np.allclose(rays[31:33, 31:33].mean((0, 1)), forward, atol=0.02)


def test_class_centres_are_medians_so_stray_pixels_do_not_drag_them() -> None:
    logits = torch.zeros(1, 3, 8, 8)
    logits[0, 1, 2:5, 2:5] = 5.0  # a 3x3 object
    logits[0, 1, 7, 7] = 5.0  # one stray pixel of the same class, far away
    points = torch.zeros(1, 8, 8, 3)
    points[0, :, :, 0] = torch.arange(8.0).view(8, 1)
    points[0, 7, 7] = torch.tensor([100.0, 100.0, 100.0])
    counts, centres = class_statistics(logits, points)
    assert counts[0].tolist() == [54.0, 10.0, 0.0]
    assert centres[0, 1, 0] == 3.0  # the median row, not pulled towards the stray pixel's 100
    assert centres[0, 2].tolist() == [0.0, 0.0, 0.0]  # no pixel: zeros


def test_segment_estimator_shapes_and_reads_only_the_senses() -> None:
    torch.manual_seed(0)
    estimator = SceneEstimator(segment_config())
    probs = estimator.probabilities(observation())
    assert probs["location"].shape == (2, len(OBJECTS), len(LOCATIONS))
    assert probs["visible"].shape == (2, len(OBJECTS)) and probs["position"].shape == (2, len(OBJECTS), 3)
    outputs = estimator.net(estimator.batch_tensors(observation()))
    assert outputs["segment_front"].shape == (2, len(CLASSES), 16, 16)
    assert outputs["features"].shape == (2, len(OBJECTS), relation_feature_size(len(OBJECTS), 2))
    one = {key: value[0] for key, value in observation().items()}
    assert set(estimator.estimate(one).objects) == set(OBJECTS)
    with pytest.raises(ValueError, match="privileged"):
        estimator.estimate({**one, "objects": np.zeros(44, np.float32)})


def test_segment_config_names_every_object_and_anchor() -> None:
    with pytest.raises(ValueError, match="segment_classes"):
        EstimatorConfig(objects=OBJECTS, locations=LOCATIONS, arch="segment", segment_classes=("other", "mug"))


@pytest.mark.parametrize("focus", [0.0, 0.5])
def test_segment_estimator_trains_on_masks_and_round_trips(tmp_path: Path, focus: float) -> None:
    """Collect a few random scenes with masks, train briefly, save, load: the same probabilities come back."""
    from experiments.scene_estimation.data import collect_random_scenes, load_frames
    from experiments.scene_estimation.labels import SEGMENT_CLASSES
    from experiments.scene_estimation.train import TrainConfig, train

    data = collect_random_scenes(range(400, 406), tmp_path / "frames", image_size=32, arm_steps=2, per_shard=6)
    frames = load_frames(data)
    assert frames["seg_front"].shape == (6, 32, 32) and frames["seg_front"].max() < len(SEGMENT_CLASSES)
    red = SEGMENT_CLASSES.index("red_block")
    assert ((frames["seg_front"] == red).sum((1, 2)) == frames["pixels"][:, 0, 0]).all()  # masks match counts
    config = TrainConfig(epochs=1, batch_size=4, arch="segment", input_size=32, width=4, segment_steps=4,
                         segment_crop=16, segment_batch=4, relation_epochs=2, segment_focus=focus,
                         relation_dropout=focus)  # the second run also trains with dropout
    card = train([data], tmp_path / "est.pt", config)
    assert card["frames"] == 6 and [row["stage"] for row in card["history"]][-1] == "relations"
    loaded = SceneEstimator.load(tmp_path / "est.pt")
    assert loaded.config.arch == "segment" and loaded.config.segment_classes == SEGMENT_CLASSES
    assert any(isinstance(m, torch.nn.Dropout) for m in loaded.net.relations) == (focus > 0)
    obs = {key: frames[key][:2].astype(np.float32) if key.startswith("depth") else frames[key][:2] for key in SENSES}
    first, again = loaded.probabilities(obs), SceneEstimator.load(tmp_path / "est.pt").probabilities(obs)
    assert np.allclose(first["location"], again["location"])
    assert not np.allclose(loaded.net.feature_std.numpy(), 1.0)  # standardisation fitted on the training frames
    assert loaded.config.wrist_camera == WRIST_CAMERA  # wrist pixels back-project too (the default)
    if focus:
        return
    # Only the relation classifier trains when a checkpoint's segmenter and drawer/holding branch are reused.
    reused = train([data], tmp_path / "again.pt", replace(config, reuse_perception=str(tmp_path / "est.pt")))
    assert reused["history"][0]["stage"] == "reused" and "segmenter" not in {row["stage"] for row in reused["history"]}
    again_net = SceneEstimator.load(tmp_path / "again.pt").net
    for key, value in loaded.net.state_dict().items():
        if not key.startswith(("relations.", "feature_")):
            assert torch.equal(value, again_net.state_dict()[key]), key
    other = replace(loaded.config, image_size=64)  # frames of another camera size
    SceneEstimator(other, loaded.net).save(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other classes"):
        train([data], tmp_path / "bad.pt", replace(config, reuse_perception=str(tmp_path / "other.pt")))


def test_segment_training_refuses_frames_without_masks(tmp_path: Path) -> None:
    import json

    from experiments.scene_estimation.data import collect_random_scenes
    from experiments.scene_estimation.train import TrainConfig, train

    data = collect_random_scenes(range(410, 412), tmp_path / "frames", image_size=32, arm_steps=0, per_shard=2)
    meta = json.loads((data / "meta.json").read_text())
    del meta["segment_classes"]  # as written by an older collector
    (data / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="segmentation masks"):
        train([data], tmp_path / "est.pt", TrainConfig(arch="segment", input_size=32))


def test_wrist_pixels_back_project_to_the_object_the_wrist_camera_sees() -> None:
    """Hover over the red block, then back-project the wrist camera's red-block pixels with the pose read from
    proprioception alone: their median lands on the block (its top face, 2 cm above its centre)."""
    from envs.household import HouseholdEnv

    env = HouseholdEnv(task="pick", obs_mode="rgbd_touch", image_size=64)
    try:
        obs, _ = env.reset(seed=3, options={"args": ["red_block"]})
        block = env.scene_state().position("red_block")
        for _ in range(80):  # the grasp point to 12 cm above the block
            offset = block + np.array([0.0, 0.0, 0.12]) - obs["proprio"][:3]
            obs, *_ = env.step(np.array([*np.clip(offset / 0.02, -1, 1), 1.0], dtype=np.float32))
        _, depth, seg = env.render_camera("wrist", segmentation=True)
        mask = seg == env.sim.body_id("red_block")
        assert mask.sum() > 30, "the wrist camera should see the block it hovers over"
        eye, rays = wrist_rays(torch.from_numpy(obs["proprio"][None]), WRIST_CAMERA, 64)
        points = (eye[:, None, None] + torch.from_numpy(depth[None]) * rays)[0].numpy()
        median = np.median(points[mask], axis=0)
        block = env.scene_state().position("red_block")
        assert np.linalg.norm(median[:2] - block[:2]) < 0.02, (median, block)
        assert 0.0 < median[2] - block[2] < 0.035
    finally:
        env.close()


def test_a_class_hidden_from_the_front_camera_takes_the_wrist_cameras_centre() -> None:
    front_counts = torch.tensor([[50.0, 1.0, 0.0]])
    wrist_counts = torch.tensor([[200.0, 30.0, 2.0]])
    front = torch.tensor([[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]])
    wrist = torch.tensor([[[9.0, 9.0, 9.0], [8.0, 8.0, 8.0], [7.0, 7.0, 7.0]]])
    fused = fall_back_to_wrist(front_counts, front, wrist_counts, wrist, 4.0, 4.0)
    # seen well from the front: front; barely seen from the front but well by the wrist: wrist; neither: front
    assert fused[0].tolist() == [[1.0, 1.0, 1.0], [8.0, 8.0, 8.0], [0.0, 0.0, 0.0]]
