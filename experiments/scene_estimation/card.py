"""A model card for a trained scene estimator, written from its held-out evaluation report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.common.io import atomic_write_text


def _rate(row: dict[str, Any]) -> str:
    if row["accuracy"] is None:
        return "n/a"
    low, high = row["ci95"]
    return f"{row['accuracy']:.2%} [{low:.3f}, {high:.3f}] ({row['correct']}/{row['total']})"


def _sizes(config: dict[str, Any]) -> tuple[int, int]:
    """The front and wrist cameras' image sides."""
    wrist = int(config.get("image_size", 64))
    return int(config.get("front_image_size") or wrist), wrist


def _architecture(train: dict[str, Any], card: dict[str, Any], config: dict[str, Any]) -> str:
    if train.get("arch") == "segment":
        front, wrist = _sizes(config)
        crop = int(train.get("segment_crop", 32))
        crops = f"{crop}x{crop} crops" if front == wrist else \
            f"{crop * front // wrist}x{crop * front // wrist} (front) and {crop}x{crop} (wrist) crops"
        norms = ", batch-norm statistics per camera" if config.get("segment_camera_norms") else ""
        projected = ("front-camera and wrist-camera (its pose from proprioception; it stands in where the front camera "
                     "barely sees an object)") if config.get("wrist_camera") else "front-camera"
        return (f"- architecture: segment: a per-pixel segmenter (width {train.get('width', '?')}{norms}) on both "
                "cameras, "
                f"{projected} depth back-projected to world points (median per object), and a relation classifier "
                "over relative geometry (to the bowl, the plate, the other objects, the grasp point); drawer and "
                f"holding from keypoint stems at {train.get('input_size', '?')} px and touch; "
                f"{card.get('parameters', '?')} parameters; {train.get('segment_steps', '?')} segmenter steps on "
                f"{crops}, {train.get('relation_epochs', '?')} relation epochs")
    return (f"- architecture: {train.get('arch', '?')} camera stems, input pooled to "
            f"{train.get('input_size', '?')} px, width {train.get('width', '?')}; "
            f"{card.get('parameters', '?')} parameters")


def model_card(name: str, card: dict[str, Any], report: dict[str, Any], command: str,
               config: dict[str, Any] | None = None) -> str:
    """Markdown: what the estimator is, how it was trained, how good it is on held-out seeds, where it fails."""
    acc = report["accuracy"]
    train = card.get("train", {})
    config = config or {}
    front, wrist = _sizes(config)
    hidden = report["not_seen_total"]
    lines = [
        f"# {name}: scene-state estimator", "",
        f"Reads one `rgbd_touch` observation (front RGB-D at {front}x{front}, wrist RGB-D at {wrist}x{wrist}, "
        "fingertip touch, proprioception) and",
        "reports, with confidences: each movable object's location class (table, bowl, drawer, plate, on a block,",
        "held, none) and position, whether the drawer is open, whether the gripper holds something. An object",
        "the estimator judges unseen (its visibility output) is reported `unknown`.", "",
        _architecture(train, card, config),
        f"- trained on {card.get('frames', '?')} frames from {', '.join(card.get('trained_on', []))}, "
        f"{train.get('epochs', '?')} epochs, seed {train.get('seed', '?')}; last epoch kept (no held-out selection)",
        f"- command: `{command}`", "",
        f"## Held-out accuracy ({report['frames']} frames, {report['episodes']} episodes on seeds never trained on)",
        "", "| fact | accuracy [95% Wilson CI] |", "|---|---|",
        f"| location (all objects, where seen or held) | {_rate(acc['location'])} |",
        *(f"| location: {o} | {_rate(r)} |" for o, r in acc["location_per_object"].items()),
        f"| drawer open/closed | {_rate(acc['drawer'])} |",
        f"| gripper holding | {_rate(acc['holding'])} |",
        f"| overall | {_rate(acc['overall'])} |", "",
        f"Objects the cameras did not see: {hidden['frames']} object-frames; answered unknown "
        f"{hidden['answered_unknown']}, right location anyway {hidden['right_location']}, wrong guess "
        f"{hidden['wrong_guess']}. Unknown while seen (a miss): {report['unknown_when_seen']}.", "",
        f"Calibration (ECE, 10 bins): location {report['calibration']['location']['ece']:.4f}, drawer "
        f"{report['calibration']['drawer']['ece']:.4f}, holding {report['calibration']['holding']['ece']:.4f}.",
        f"Position error (seen, not held): mean {report['position_error_cm']['mean']} cm, median "
        f"{report['position_error_cm']['median']} cm.",
        f"Cost: {report['cost_ms_batch1']['median']} ms per observation (batch 1, "
        f"{report['cost_ms_batch1'].get('threads', 1)} CPU thread(s), shared machine).",
    ]
    if "questions" in report:
        lines += ["", f"`embodia ask` on {report['questions']['questions']} held-out questions generated from the "
                  f"oracle: {_rate(report['questions']['overall'])}."]
    lines += ["", "## Limits", "",
              "The issue's targets are >= 97% per fact type and >= 99% overall; compare the table above with them",
              "before relying on its facts. Full confusion tables and reliability tables: the `.eval.json` written",
              "next to the weights by `embodia train-estimator --heldout`."]
    return "\n".join(lines) + "\n"


def write_card(path: Path, name: str, card: dict[str, Any], report: dict[str, Any], command: str,
               config: dict[str, Any] | None = None) -> Path:
    """Write the estimator's model card (markdown: data, command, held-out figures) atomically; returns `path`."""
    return atomic_write_text(path, model_card(name, card, report, command, config))
