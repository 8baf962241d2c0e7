"""`embodia dagger --skill pick --start chain`: train a skill policy by DAgger from the scripted expert.

Writes `<out>/data/` (one Minari dataset per round), `<out>/policy.safetensors` + `<out>/policy.json` (the card:
observation set, training command, cost, evaluation from chain starts and from plain resets) and
`<out>/dagger.json`; `--ship` copies the policy and card into `agent/skill_policies/` as `<task>.*`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

from experiments.common import args as args_types
from experiments.common.errors import InputError
from experiments.common.jsonio import write_json
from experiments.common.lazy import LazyChoices

TASK_NAMES = LazyChoices("envs.tasks", "TASK_NAMES")
"""The env's task names, imported on first use (importing envs loads pybullet)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `dagger` sub-command."""
    parser = subparsers.add_parser("dagger", help="train a skill policy by DAgger (expert labels, student acts)")
    parser.add_argument("--skill", required=True, metavar="TASK",
                        help="env task, one of envs.TASK_NAMES (an unknown one is refused with the list)")
    parser.add_argument("--obs-mode", default="state", help="observation set: state or rgbd_touch")
    parser.add_argument("--start", default="chain", help="episode starts: chain or reset")
    parser.add_argument("--prefix", default="scripted",
                        help="who runs the chain starts' sub-chains: scripted (the experts), learned (the shipped "
                             "learned skills, as --skills learned meets them) or mixed (half each)")
    parser.add_argument("--rounds", type=int, default=3, help="DAgger rounds after the expert round")
    parser.add_argument("--expert-episodes", type=int, default=200, help="expert episodes in round 0")
    parser.add_argument("--episodes-per-round", type=int, default=150, help="student episodes per later round")
    parser.add_argument("--beta0", type=float, default=0.5, help="round r executes the expert with prob beta0**r")
    parser.add_argument("--bc-epochs", type=int, default=30, help="behaviour-cloning epochs after each round")
    parser.add_argument("--refit", default="continue",
                        help="after each round: continue (fine-tune the student) or fresh (fit a new one on all data)")
    parser.add_argument("--bc-lr-schedule", default="constant", help="behaviour cloning's learning rate: constant "
                        "or cosine")
    parser.add_argument("--labeller", default="plain", help="the expert that labels: plain, recovering "
                        "(re-grasps an object the student dropped), careful (re-grasps, and never lets go far "
                        "above the drop point), nearest (re-grasps, and puts an object down on "
                        "the table at the free point nearest to it), patient (as nearest, and leaves a phase only "
                        "when the state says so, never because the student was slow), state (places: an action "
                        "that depends on the state alone; other skills: recovering), local (as state, with the bowl's "
                        "and the plate's drop point judged from what stands in them alone), radial (as local, and "
                        "on the table straight away from what the object is over), away (as local, with the bowl's "
                        "and the plate's drop point turning continuously away from what stands in them) or "
                        "lowrelease (places: "
                        "recovering, but never 'let go' with the object held over 6 cm above its drop goal) or "
                        "tightrelease (as lowrelease, 1 cm) or column (as local, and also lets go in a column "
                        "over and under the drop point)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="override a training-config key for the student, e.g. --set net_arch=[256,256] "
                             "(repeatable)")
    parser.add_argument("--focus-targets", default="", metavar="T1,T2",
                        help="ask --focus-fraction of the episodes for these targets (the task's last argument, e.g. "
                             "table,plate) or object:target pairs (mug:plate), chain starts built for them; the rest "
                             "as evaluation draws them")
    parser.add_argument("--focus-fraction", type=float, default=0.0, help="share of episodes --focus-targets asks for")
    parser.add_argument("--crowd-fraction", type=float, default=0.0,
                        help="places: share of episodes whose chain start puts another object in the target first "
                             "(the bowl, the drawer or the plate already holding one; for the table or a block, the "
                             "object lifted off a support), rare in the natural mix")
    parser.add_argument("--extra-data", action="append", default=[], metavar="DAGGER_OUT",
                        help="an earlier dagger run's --out folder (same skill and observation set) whose datasets "
                             "every fit also clones; repeatable")
    parser.add_argument("--seed", type=args_types.seed, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu or cuda")
    parser.add_argument("--encoder", default="minilm", help="text encoder: minilm or hashing (tests)")
    parser.add_argument("--init", default=None, help="start the student from this shipped policy card")
    parser.add_argument("--blind-yaw", action="store_true",
                        help="state mode: the student reads every object's yaw as 0, as the scene estimator's rows "
                             "give it, so it acts alike on the simulator's rows and on perceived ones")
    parser.add_argument("--pretrained-encoders", default="", metavar="PERCEPTION_PT",
                        help="a fresh rgbd_touch student's camera/touch encoders start from this "
                             "`embodia pretrain-perception` checkpoint")
    parser.add_argument("--eval-episodes", type=int, default=100, help="evaluation episodes from chain starts")
    parser.add_argument("--reset-eval-episodes", type=int, default=100, help="evaluation episodes from plain resets")
    parser.add_argument("--out", type=args_types.output_dir, default=None,
                        help="run folder (default runs/dagger/<skill>_<obs>_s<seed>)")
    parser.add_argument("--ship", action="store_true", help="copy the policy and card into agent/skill_policies")
    parser.add_argument("--policy-dir", type=Path, default=None, help="where --ship puts it")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run DAgger rounds for one skill, evaluate the student, and with --ship install it with its card."""
    from agent.policy import DEFAULT_DIR, FORMAT
    from agent.policy_io import architecture, save_policy
    from experiments.common.io import atomic_write
    from experiments.imitation.dagger import DaggerConfig, run_dagger, write_summary
    from experiments.imitation.evaluate import evaluate_policy
    from experiments.training.config import parse_assignments
    from experiments.training.language import EmbeddingTable, all_texts
    from experiments.training.train import SKILL_OF_TASK
    from perception.text import default_text_encoder

    cfg = DaggerConfig(task=args.skill, obs_mode=args.obs_mode, start=args.start, rounds=args.rounds,
                       expert_episodes=args.expert_episodes, episodes_per_round=args.episodes_per_round,
                       beta0=args.beta0, seed=args.seed, encoder=args.encoder, device=args.device,
                       bc_epochs=args.bc_epochs, init=args.init, pretrained_encoders=args.pretrained_encoders,
                       refit=args.refit, bc_lr_schedule=args.bc_lr_schedule,
                       labeller=args.labeller, prefix=args.prefix, blind_yaw=args.blind_yaw,
                       focus_targets=tuple(t for t in args.focus_targets.split(",") if t),
                       focus_fraction=args.focus_fraction, crowd_fraction=args.crowd_fraction,
                       extra_data=tuple(args.extra_data),
                       training_overrides=parse_assignments(args.assignments))
    cfg.train_config()  # a bad --set fails here, before any episode is recorded
    if args.eval_episodes < 1 or args.reset_eval_episodes < 1:
        raise InputError(f"--eval-episodes and --reset-eval-episodes must be >= 1, got {args.eval_episodes} and "
                         f"{args.reset_eval_episodes}")
    out = args.out or Path("runs/dagger") / f"{cfg.task}_{cfg.obs_mode}_{cfg.start}_s{cfg.seed}"
    if (out / "policy.json").exists() or (out / "data").exists():
        raise InputError(f"run folder {out} already holds a DAgger run; choose another --out")
    command = "embodia " + shlex.join(sys.argv[1:]) if sys.argv[1:] else f"embodia dagger --skill {cfg.task}"
    table = EmbeddingTable.build(default_text_encoder(cfg.encoder), all_texts(cfg.task), source=cfg.encoder)
    policy, summary = run_dagger(cfg, out, table, progress=lambda line: print(line, flush=True))
    atomic_write(out / "policy.safetensors", lambda tmp: save_policy(policy, tmp))
    evaluations = {}
    plan = [("chain", "chain", "scripted", args.eval_episodes),
            ("reset", "reset", "scripted", args.reset_eval_episodes)]
    if cfg.prefix != "scripted":
        plan.insert(1, ("chain_learned_prefix", "chain", "learned", args.eval_episodes))
    for key, start, prefix, episodes in plan:
        evaluations[key] = evaluate_policy(policy, cfg.task, cfg.obs_mode, start, table, episodes, prefix=prefix,
                                           blind_yaw=cfg.blind_yaw)
        row = evaluations[key]
        where = f"{prefix}-prefix chain" if start == "chain" else start
        print(f"eval from {where} starts: {row['successes']}/{row['episodes']} "
              f"[{row['ci95'][0]:.2f}, {row['ci95'][1]:.2f}]", flush=True)
    summary["evaluation"] = evaluations
    write_summary(out, summary)
    chain = evaluations["chain"]
    card = {"format": FORMAT, "task": cfg.task, "skill": SKILL_OF_TASK.get(cfg.task, cfg.task),
            "file": "policy.safetensors", "architecture": architecture(policy), "obs_mode": cfg.obs_mode,
            "observation_keys": sorted(policy.observation_space.spaces), "encoder": cfg.encoder,
            "goal_dim": table.dim, "train_command": command, "training": "dagger", "start": cfg.start,
            "seed": cfg.seed, "train_samples": summary["samples"], "train_minutes": round(summary["seconds"] / 60, 2),
            "device": summary["device"], "init": cfg.init, "refit": cfg.refit,
            "bc_lr_schedule": cfg.bc_lr_schedule, "labeller": cfg.labeller,
            "training_overrides": cfg.training_overrides, **({"blind_yaw": True} if cfg.blind_yaw else {}),
            "eval": {"source": "embodia dagger", "start": "chain", "episodes": chain["episodes"],
                     "successes": chain["successes"], "rate": chain["rate"], "ci95": chain["ci95"],
                     "by_argument": {**evaluations["reset"]["by_argument"], **chain["by_argument"]}},
            "prefix": cfg.prefix, "eval_reset": evaluations["reset"],
            **({"eval_learned_prefix": evaluations["chain_learned_prefix"]} if cfg.prefix != "scripted" else {}),
            "eval_command": command + " (evaluation at the end of training)",
            "value_range": chain["value_range"], "shaping": {"progress_reward": 0.0, "approach_reward": 0.0}}
    write_json(out / "policy.json", card, indent=1)
    print(f"policy: {out / 'policy.safetensors'}  card: {out / 'policy.json'}")
    if args.ship:
        print(f"shipped: {ship_run(out, args.policy_dir or DEFAULT_DIR)}")
    return 0


def ship_run(out: Path, policy_dir: Path) -> Path:
    """Copy a finished DAgger run's policy and card into `policy_dir` as `<task>.safetensors` / `<task>.json`."""
    from agent.policy import read_card
    from experiments.common.io import atomic_write

    card = json.loads((out / "policy.json").read_text())
    task = card["task"]
    target = Path(policy_dir)
    atomic_write(target / f"{task}.safetensors", lambda tmp: shutil.copyfile(out / "policy.safetensors", tmp))
    shipped = write_json(target / f"{task}.json", {**card, "file": f"{task}.safetensors"}, indent=1)
    read_card(shipped)  # the shipped pair must load as the agent loads it
    return shipped
