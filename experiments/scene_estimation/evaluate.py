"""Held-out evaluation of the scene estimator: per-fact accuracy with Wilson intervals, confusion, calibration.

Scoring rules (the issue's): a location fact is scored on every frame where the oracle says the object is
seen (enough segmentation pixels) or held; answering ``unknown`` there is a miss. Where the object is not
seen, the right answer is ``unknown`` (or the true location, if the estimator can still tell): those frames
are reported apart, as the share answered unknown and the share of wrong guesses. Drawer and holding are
scored on every frame. "Overall" pools every scored fact.

Calibration: for each fact type, the stated confidence of the emitted answer is binned (10 equal-width
bins); the reliability table gives each bin's mean confidence and accuracy, and ECE is their gap weighted
by the bin's share of answers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.common.errors import InputError
from experiments.common.stats import wilson_interval
from experiments.scene_estimation.data import dataset_meta, load_frames
from experiments.scene_estimation.training_common import LABEL_KEYS, visible_labels
from perception.scene_estimator import SENSES, UNKNOWN, SceneEstimator


def _rate(hits: int, total: int) -> dict[str, Any]:
    if total == 0:
        return {"correct": 0, "total": 0, "accuracy": None, "ci95": None}
    low, high = wilson_interval(hits, total)
    return {"correct": int(hits), "total": int(total), "accuracy": hits / total,
            "ci95": [round(low, 4), round(high, 4)]}


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability table and expected calibration error of (confidence, correct) pairs."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = index == b
        if not mask.any():
            continue
        mean_conf, accuracy = float(confidence[mask].mean()), float(correct[mask].mean())
        ece += mask.mean() * abs(mean_conf - accuracy)
        table.append({"bin": [round(edges[b], 2), round(edges[b + 1], 2)], "count": int(mask.sum()),
                      "confidence": round(mean_conf, 4), "accuracy": round(accuracy, 4)})
    return {"ece": round(float(ece), 5), "table": table}


def predict(estimator: SceneEstimator, frames: dict[str, np.ndarray], batch: int = 256) -> dict[str, np.ndarray]:
    """Decoded answers for every frame: location names per object, drawer, holding, their confidences."""
    objects = estimator.config.objects
    out: dict[str, list] = {"location": [], "confidence": [], "visible": [], "position": [], "drawer": [],
                            "drawer_conf": [], "holding": [], "holding_conf": []}
    for start in range(0, len(frames["proprio"]), batch):
        obs = {key: frames[key][start:start + batch] for key in SENSES}
        for estimate in estimator.estimate_batch(obs):
            out["location"].append([estimate.objects[o].location for o in objects])
            out["confidence"].append([estimate.objects[o].confidence for o in objects])
            out["visible"].append([estimate.objects[o].visible for o in objects])
            out["position"].append([estimate.objects[o].position for o in objects])
            out["drawer"].append(estimate.drawer_open)
            out["drawer_conf"].append(estimate.drawer_confidence)
            out["holding"].append(estimate.holding)
            out["holding_conf"].append(estimate.holding_confidence)
    return {key: np.asarray(value) for key, value in out.items()}


def evaluate(estimator: SceneEstimator, folders: Sequence[Path]) -> dict[str, Any]:
    """Every metric of the module docstring on the frames under `folders`."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    parts = [load_frames(folder, (*SENSES, *LABEL_KEYS, "episode")) for folder in folders]
    frames = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    meta = dataset_meta(folders[0])
    config = estimator.config
    if tuple(meta["objects"]) != config.objects or tuple(meta["locations"]) != config.locations:
        raise InputError(f"the estimator's vocabulary ({list(config.objects)}, {list(config.locations)}) differs "
                         f"from the dataset's ({meta['objects']}, {meta['locations']})")
    started = time.perf_counter()
    pred = predict(estimator, frames)
    seconds = time.perf_counter() - started
    locations = np.asarray(config.locations)
    truth = locations[frames["location"].astype(int)]
    seen = visible_labels(frames, meta["min_visible_pixels"], config.locations.index("held"))
    correct = pred["location"] == truth
    report: dict[str, Any] = {"frames": len(truth), "episodes": len(np.unique(frames["episode"])),
                              "seconds_per_frame_batched": seconds / len(truth)}
    per_object, hidden = {}, {}
    for i, name in enumerate(config.objects):
        per_object[name] = _rate(int(correct[seen[:, i], i].sum()), int(seen[:, i].sum()))
        unseen = ~seen[:, i]
        answered_unknown = pred["location"][unseen, i] == UNKNOWN
        hidden[name] = {"frames": int(unseen.sum()), "answered_unknown": int(answered_unknown.sum()),
                        "right_location": int(correct[unseen, i].sum()),
                        "wrong_guess": int((~answered_unknown & ~correct[unseen, i]).sum())}
    location_hits, location_total = int(correct[seen].sum()), int(seen.sum())
    drawer_ok = pred["drawer"] == frames["drawer_open"].astype(bool)
    holding_ok = pred["holding"] == frames["holding"].astype(bool)
    n = len(truth)
    report["accuracy"] = {
        "location": _rate(location_hits, location_total), "location_per_object": per_object,
        "drawer": _rate(int(drawer_ok.sum()), n), "holding": _rate(int(holding_ok.sum()), n),
        "overall": _rate(location_hits + int(drawer_ok.sum()) + int(holding_ok.sum()), location_total + 2 * n),
    }
    report["not_seen"] = hidden
    report["not_seen_total"] = {key: int(sum(h[key] for h in hidden.values()))
                                for key in ("frames", "answered_unknown", "right_location", "wrong_guess")}
    report["unknown_when_seen"] = int((pred["location"][seen] == UNKNOWN).sum())
    report["visibility_head_accuracy"] = _rate(int(((pred["visible"] >= config.visible_threshold) == seen).sum()),
                                               seen.size)
    report["confusion"] = {
        "location": _confusion(truth[seen], pred["location"][seen], [*config.locations, UNKNOWN]),
        "drawer": _confusion(np.where(frames["drawer_open"], "open", "closed"),
                             np.where(pred["drawer"], "open", "closed"), ["open", "closed"]),
        "holding": _confusion(np.where(frames["holding"], "holding", "empty"),
                              np.where(pred["holding"], "holding", "empty"), ["holding", "empty"]),
    }
    answered = seen & (pred["location"] != UNKNOWN)
    report["calibration"] = {
        "location": reliability(pred["confidence"][answered], correct[answered]),
        "drawer": reliability(pred["drawer_conf"], drawer_ok),
        "holding": reliability(pred["holding_conf"], holding_ok),
    }
    resting = seen & (truth != "held")
    errors = np.linalg.norm(pred["position"][resting] - frames["position"][resting], axis=-1)
    report["position_error_cm"] = {"mean": round(float(errors.mean()) * 100, 2),
                                   "median": round(float(np.median(errors)) * 100, 2),
                                   "p95": round(float(np.percentile(errors, 95)) * 100, 2)}
    report["cost_ms_batch1"] = cost_ms(estimator, {key: frames[key][0] for key in SENSES})
    report["step_share"] = step_share(estimator)
    return report


def _confusion(truth: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict[str, dict[str, int]]:
    """Rows: true label; columns: answered label (only non-zero cells kept)."""
    table: dict[str, dict[str, int]] = {}
    for t in labels:
        row = {p: int(((truth == t) & (predicted == p)).sum()) for p in labels}
        row = {p: c for p, c in row.items() if c}
        if row:
            table[t] = row
    return table


def cost_ms(estimator: SceneEstimator, obs: dict[str, np.ndarray], repeats: int = 50) -> dict[str, float]:
    """Wall time of `estimate` on one observation (batch 1), median and mean over `repeats` after a warm-up."""
    for _ in range(5):
        estimator.estimate(obs)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        estimator.estimate(obs)
        times.append((time.perf_counter() - started) * 1000)
    return {"median": round(float(np.median(times)), 3), "mean": round(float(np.mean(times)), 3),
            "threads": torch.get_num_threads()}


def format_report(report: dict[str, Any]) -> str:
    """A human-readable summary of `evaluate`'s report."""
    acc = report["accuracy"]

    def line(name: str, row: dict[str, Any]) -> str:
        if row["accuracy"] is None:
            return f"  {name:14s} n/a (no frames)"
        low, high = row["ci95"]
        return f"  {name:14s} {row['accuracy']:.2%}  [{low:.4f}, {high:.4f}]  ({row['correct']}/{row['total']})"

    lines = [f"held-out frames: {report['frames']} from {report['episodes']} episodes", "accuracy (95% Wilson CI):"]
    lines.append(line("location", acc["location"]))
    lines += [line(name, row) for name, row in acc["location_per_object"].items()]
    lines += [line("drawer", acc["drawer"]), line("holding", acc["holding"]), line("overall", acc["overall"])]
    hidden = report["not_seen_total"]
    lines.append(f"objects not seen: {hidden['frames']} (answered unknown {hidden['answered_unknown']}, "
                 f"right location {hidden['right_location']}, wrong guess {hidden['wrong_guess']}); "
                 f"unknown while seen: {report['unknown_when_seen']}")
    cal = report["calibration"]
    lines.append(f"calibration ECE: location {cal['location']['ece']:.4f}, drawer {cal['drawer']['ece']:.4f}, "
                 f"holding {cal['holding']['ece']:.4f}")
    pos = report["position_error_cm"]
    lines.append(f"position error (cm): mean {pos['mean']}, median {pos['median']}, p95 {pos['p95']}")
    cost = report["cost_ms_batch1"]
    lines.append(f"cost per observation (batch 1, {cost['threads']} thread(s)): median {cost['median']} ms")
    if "step_share" in report:
        share = report["step_share"]
        lines.append(f"agent step: env {share['env_step_ms']} ms + estimate {share['estimate_ms']} ms "
                     f"(estimator share {share['estimator_share']:.0%})")
    return "\n".join(lines)


def oracle_estimate(locations: Sequence[str], objects: Sequence[str], drawer_open: bool, holding: bool
                    ) -> Any:
    """The oracle's labels of one frame as a `SceneEstimate` (confidence 1).

    Questions about the truth are then answered by the same code as questions about the perceived scene.
    """
    from perception.scene_estimator import ObjectEstimate, SceneEstimate

    estimates = {name: ObjectEstimate(name, location, 1.0, 1.0, (0.0, 0.0, 0.0), location)
                 for name, location in zip(objects, locations, strict=True)}
    return SceneEstimate(estimates, bool(drawer_open), 1.0, bool(holding), 1.0)


def question_set(objects: Sequence[str], rng: np.random.Generator, per_frame: int = 3) -> list[str]:
    """Questions drawn per frame from templates (drawer, where, what is in/on, holding, is X in/on Y)."""
    from experiments.scene_estimation.questions import PLACES

    spoken = [o.replace("_", " ") for o in objects]
    templates = (
        ["is the drawer open?", "is the drawer closed?", "what is the gripper holding?"]
        + [f"where is the {s}?" for s in spoken]
        + [f"what is {'in' if p in ('bowl', 'drawer') else 'on'} the {p}?" for p in PLACES]
        + [f"is the {s} {'in' if p in ('bowl', 'drawer') else 'on'} the {p}?" for s in spoken for p in PLACES]
    )
    return [str(q) for q in rng.choice(templates, size=per_frame, replace=False)]


def evaluate_questions(estimator: SceneEstimator, folders: Sequence[Path], frames_used: int = 2000,
                       seed: int = 0) -> dict[str, Any]:
    """Accuracy of `ask`'s answers against the oracle's, on questions drawn from held-out frames.

    A question about an object that the cameras do not see is right when perception says it does not know
    (or answers what is true); every other answer must equal the oracle's answer exactly (for "what is in the
    bowl?", the same set of objects).
    """
    from experiments.scene_estimation.questions import answer

    parts = [load_frames(folder, (*SENSES, *LABEL_KEYS, "episode")) for folder in folders]
    frames = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    meta = dataset_meta(folders[0])
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(frames["proprio"]), size=min(frames_used, len(frames["proprio"])), replace=False))
    frames = {key: value[chosen] for key, value in frames.items()}
    config = estimator.config
    seen = visible_labels(frames, meta["min_visible_pixels"], config.locations.index("held"))
    estimates = []
    for start in range(0, len(chosen), 256):
        estimates += estimator.estimate_batch({key: frames[key][start:start + 256] for key in SENSES})
    by_kind: dict[str, list[int]] = {}
    examples = []
    for i, perceived in enumerate(estimates):
        truth = oracle_estimate([config.locations[k] for k in frames["location"][i]], config.objects,
                                frames["drawer_open"][i], frames["holding"][i])
        for question in question_set(config.objects, rng):
            mine, right = answer(question, perceived), answer(question, truth)
            subject = mine.query.subject
            hidden = [o for o, s in zip(config.objects, seen[i], strict=True) if not s]
            if subject and subject in hidden:
                ok = mine.value in (None, UNKNOWN) or mine.value == right.value
            elif mine.query.kind == "what_at":  # missing only objects it says it cannot see is right
                missing = set(right.value) - set(mine.value)
                ok = set(mine.value) <= set(right.value) and missing <= set(hidden) & set(mine.unknown)
            else:
                ok = mine.value == right.value
            by_kind.setdefault(mine.query.kind, [0, 0])
            by_kind[mine.query.kind][0] += int(ok)
            by_kind[mine.query.kind][1] += 1
            if not ok and len(examples) < 12:
                examples.append({"question": question, "perceived": mine.text, "oracle": right.text})
    hits, total = sum(v[0] for v in by_kind.values()), sum(v[1] for v in by_kind.values())
    return {"frames": len(chosen), "questions": total, "overall": _rate(hits, total),
            "per_kind": {kind: _rate(*v) for kind, v in sorted(by_kind.items())}, "wrong_examples": examples}


def step_share(estimator: SceneEstimator, steps: int = 100, seed: int = 0) -> dict[str, float]:
    """Milliseconds per control step of the rgbd_touch kitchen and of one estimate, and the estimator's share.

    With `--perception learned` the estimator reads every control step (success checks), so its share of
    an agent step is estimate / (env step + estimate); scripted skills add ~nothing on top.
    """
    from envs.household import HouseholdEnv

    env = HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=estimator.config.image_size,
                       front_image_size=estimator.config.front_size)
    try:
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        env_seconds = model_seconds = 0.0
        for _ in range(steps):
            started = time.perf_counter()
            obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            middle = time.perf_counter()
            estimator.estimate({key: obs[key] for key in SENSES})
            model_seconds += time.perf_counter() - middle
            env_seconds += middle - started
    finally:
        env.close()
    env_ms, model_ms = 1000 * env_seconds / steps, 1000 * model_seconds / steps
    return {"env_step_ms": round(env_ms, 3), "estimate_ms": round(model_ms, 3),
            "estimator_share": round(model_ms / (env_ms + model_ms), 4)}
