"""`embodia ask "QUESTION"`: answer a question about the scene from perception (cameras and touch), not the oracle.

Examples: "is the drawer open?", "where is the red block?", "what is in the bowl?", "what is the gripper
holding?". The scene is a seeded kitchen (`--seed`, optionally after `--setup "put the red block in the
bowl"` is carried out by the scripted agent) or a saved observation (`--obs obs.npz`). A question that cannot
be grounded exits 2 with the phrase.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import args as args_types
from experiments.common.jsonio import to_json_text


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `ask` sub-command."""
    parser = subparsers.add_parser("ask", help="answer a question about the scene from perception",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("question", help='e.g. "is the drawer open?" or "where is the red block?"')
    parser.add_argument("--seed", type=args_types.seed, default=0, help="scene seed (ignored with --obs)")
    parser.add_argument("--setup", default=None, help="an instruction the scripted agent carries out first")
    parser.add_argument("--obs", type=Path, default=None, help="a saved rgbd_touch observation (.npz, no pickle)")
    parser.add_argument("--save-obs", type=Path, default=None, help="also save the observation asked about (.npz)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="scene-estimator weights (default: the shipped perception/weights/scene_estimator.pt)")
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm",
                        help="text encoder of the planner that runs --setup")
    parser.add_argument("--truth", action="store_true", help="also print the oracle's facts (seeded scenes only)")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Ground the question first (cheap), then perceive the scene and answer."""
    import torch

    from experiments.scene_estimation.questions import answer, ground
    from experiments.scene_estimation.scenes import save_observation, saved_scene, seeded_scene
    from perception.scene_estimator import SHIPPED_WEIGHTS, SceneEstimator

    torch.set_num_threads(1)
    estimator = SceneEstimator.load(args.checkpoint or SHIPPED_WEIGHTS)
    ground(args.question, estimator.config.objects)  # refuse before spending time on the simulator
    if args.obs is not None:
        scene = saved_scene(args.obs)
    else:
        scene = seeded_scene(args.seed, estimator.config, args.setup, args.encoder)
    if args.save_obs is not None:
        save_observation(args.save_obs, scene.obs)
    estimate = estimator.estimate(scene.obs)
    reply = answer(args.question, estimate)
    if args.json:
        payload = {**reply.to_json(), "perceived": estimate.to_json()}
        if scene.true_facts is not None and args.truth:
            payload["true_facts"] = scene.true_facts
        if scene.setup is not None:
            payload["setup"] = scene.setup
        print(to_json_text(payload, indent=1))
        return 0
    if scene.setup is not None:
        print(f"setup: {scene.setup['instruction']} ({'done' if scene.setup['success'] else 'failed'})")
    print(f"{reply.text}  (confidence {reply.confidence:.2f})")
    if args.truth and scene.true_facts is not None:
        perceived = {tuple(f) for f in estimate.facts()}
        truth = {tuple(f) for f in scene.true_facts}
        print("perceived: " + "; ".join(" ".join(f) for f in estimate.facts()))
        print("oracle:    " + "; ".join(" ".join(f) for f in scene.true_facts))
        if perceived != truth:
            print("mismatch:  perceived only " + str(sorted(perceived - truth)) + ", oracle only "
                  + str(sorted(truth - perceived)))
    return 0
