"""The causal-feedback scenario: does a causal study's finding make the agent choose better?

Each world (one seed) changes three blocks' masses by do() at reset: two too heavy for the gripper (10 kg and
8 kg; nominal is 0.1 kg) and one decoy (2 kg: twenty times nominal, still liftable); which block is which is
drawn from the seed. The fourth block is nominal. (A slippery block, friction 0.03, also defeats the grasp, but
the simulator flags most of those grasps as physics faults, which a study discards, so it is not used.)

The robot inspects the blocks' masses and frictions (the env's variables; a real robot would weigh and feel
them) and, for every one that differs from nominal, runs a causal study in the simulator: do(variable =
nominal) against do(variable = its value here), outcome ``lift_height`` (how high the scripted pick lifts the
block), on layouts other than the world's own. The study decides what matters: the decoy's mass does not
change the lift, the heavy blocks' masses do. Its findings go into a fresh knowledge store
(`experiments.kitchen.memory_bridge.record_study_facts`) and reach the planner as ``(red_block.mass, hinders,
pick(red_block))`` facts with the finding as evidence.

Then the same instructions run twice in the same world, once without memory and once with the store's
causal facts: instructions that leave a choice ("pick up a block", "put a block in the bowl", ...), and a
control that leaves a choice for a skill no study measured ("push a block to the left": its plan must not
change). Skills are the scripted experts, so a failure is the physics, not a policy. Success rates come
with Wilson 95% intervals, over episodes and per seed; the planner's own test instructions are also
planned with every world's facts, and those that name their objects must not change.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.errors import PlanningError
from agent.skills import BLOCKS
from experiments.common.stats import wilson_interval

logger = logging.getLogger(__name__)

HEAVY_MASSES = (10.0, 8.0)
DECOY_MASS = 2.0
CHOICE_INSTRUCTIONS = ("pick up a block", "put a block in the bowl", "put a block on the plate",
                       "put one of the blocks in the drawer", "grab any block", "lift a block")
CONTROL_INSTRUCTIONS = ("push a block to the left",)
STUDIED_PROPERTIES = ("mass", "friction")


@dataclass(frozen=True)
class ScenarioConfig:
    """What `run_scenario` runs.

    Attributes:
        seeds: One world per seed (its layout and which block is heavy, slippery or a decoy).
        instructions: Instructions that leave the choice of block to the agent.
        controls: Choice-leaving instructions for skills no study measures (their plans must not change).
        study_episodes: Units per treatment value in each study.
        encoder: Text encoder of the planner ("minilm" or "hashing").
        max_replans: Replans allowed after a failed step (the agent's default is 2).
        out: Folder for studies, the store, episodes and the summary.
    """

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    instructions: tuple[str, ...] = CHOICE_INSTRUCTIONS
    controls: tuple[str, ...] = CONTROL_INSTRUCTIONS
    study_episodes: int = 6
    encoder: str = "minilm"
    max_replans: int = 2
    out: str = "runs/feedback"

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("the scenario needs at least one seed")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be >= 0, got {list(self.seeds)}")
        if self.study_episodes < 2:
            raise ValueError(f"study_episodes must be >= 2, got {self.study_episodes}")
        if not self.instructions:
            raise ValueError("the scenario needs at least one choice-leaving instruction")


def world_variables(seed: int) -> dict[str, float]:
    """The do() of world `seed`: two heavy blocks and a decoy, drawn without replacement."""
    rng = np.random.default_rng(seed)
    heavy, heavier, decoy = (str(b) for b in rng.choice(BLOCKS, size=3, replace=False))
    return {f"{heavy}.mass": HEAVY_MASSES[0], f"{heavier}.mass": HEAVY_MASSES[1], f"{decoy}.mass": DECOY_MASS}


def deviations(current: dict[str, float], nominal: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Block masses and frictions that differ from nominal here: ``{name: (nominal, current)}``."""
    out = {}
    for block in BLOCKS:
        for prop in STUDIED_PROPERTIES:
            name = f"{block}.{prop}"
            if name in current and current[name] != nominal[name]:
                out[name] = (float(nominal[name]), float(current[name]))
    return out


def study_world(seed: int, deviating: dict[str, tuple[float, float]], config: ScenarioConfig, folder: Path,
                progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """One lift_height study per deviating variable; returns every study's facts.json records."""
    from experiments.causal_study.study import StudyConfig, run_study

    facts: list[dict[str, Any]] = []
    for name, (nominal, current) in sorted(deviating.items()):
        study = StudyConfig(treatment=name, values=(nominal, current), outcome="lift_height",
                            episodes=config.study_episodes, observational_episodes=4, counterfactual_units=0,
                            seed=seed, out=str(folder / f"study_{name.replace('.', '_')}"))
        run_study(study, progress=lambda message, name=name: logger.info("%s: %s", name, message))
        found = json.loads((Path(study.out) / "facts.json").read_text())
        facts += found
        main = next(f for f in found if f["subject"] == name)
        progress(f"world {seed}: study {name} {nominal:g} -> {current:g}: {main['relation']} lift_height by "
                 f"{main['effect_size']:+.3f} m {[round(v, 3) for v in main['interval']]}")
    return facts


def run_episode(agent: Any, world: Any, seed: int, variables: dict[str, float], instruction: str) -> dict[str, Any]:
    """One instruction in a fresh world; a refusal counts as a failure with the reason."""
    world.reset(seed, variables)
    try:
        record = agent.run(world, instruction)
    except PlanningError as error:
        return {"success": False, "objects": [], "error": f"refused: {error}", "notes": []}
    plan = record.plans[0] if record.plans else {}
    acted = [s.call.args[0] for s in record.steps if s.call.skill in ("pick", "push")]
    notes = [n for n in plan.get("trace", {}).get("notes", []) if n.startswith("causal:")]
    return {"success": record.success, "objects": list(dict.fromkeys(acted)), "error": record.error,
            "replans": len(record.replans), "notes": notes}


def rate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Successes, trials, rate and Wilson 95% interval of episode rows."""
    wins, n = sum(r["success"] for r in rows), len(rows)
    low, high = wilson_interval(wins, n)
    return {"successes": wins, "trials": n, "rate": wins / n, "ci95": [round(low, 4), round(high, 4)]}


def summarise(rows: list[dict[str, Any]], config: ScenarioConfig) -> dict[str, Any]:
    """Rates per arm (choice instructions, controls), per seed, the paired difference and its sign counts."""
    summary: dict[str, Any] = {"config": asdict(config), "arms": {}, "per_seed": {}, "controls": {}}
    for arm in ("without", "with"):
        chosen = [r for r in rows if r["arm"] == arm and not r["control"]]
        summary["arms"][arm] = rate(chosen)
        controls = [r for r in rows if r["arm"] == arm and r["control"]]
        if controls:
            summary["controls"][arm] = rate(controls)
        for seed in config.seeds:
            summary["per_seed"].setdefault(str(seed), {})[arm] = rate([r for r in chosen if r["seed"] == seed])
    pairs = {(r["seed"], r["instruction"]): {} for r in rows if not r["control"]}
    for r in rows:
        if not r["control"]:
            pairs[(r["seed"], r["instruction"])][r["arm"]] = r["success"]
    summary["paired"] = {"with_only": sum(p["with"] and not p["without"] for p in pairs.values()),
                         "without_only": sum(p["without"] and not p["with"] for p in pairs.values())}
    per_seed_gain = [summary["per_seed"][str(s)]["with"]["rate"] - summary["per_seed"][str(s)]["without"]["rate"]
                     for s in config.seeds]
    summary["gain_points"] = round(100 * (summary["arms"]["with"]["rate"] - summary["arms"]["without"]["rate"]), 1)
    summary["per_seed_gain_points"] = {"mean": round(100 * float(np.mean(per_seed_gain)), 1),
                                       "min": round(100 * float(np.min(per_seed_gain)), 1)}
    control_plans = [r for r in rows if r["control"]]
    by_key: dict[tuple[int, str], dict[str, list[str]]] = {}
    for r in control_plans:
        by_key.setdefault((r["seed"], r["instruction"]), {})[r["arm"]] = r["objects"]
    summary["control_choices_changed"] = sum(v.get("with") != v.get("without") for v in by_key.values())
    return summary


def run_scenario(config: ScenarioConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every world: inspect, study, store, then every instruction without and with the findings."""
    import torch

    from agent.loop import EmbodiedAgent
    from agent.planner import GroundedPlanner
    from envs.household import HouseholdEnv
    from experiments.common.io import atomic_write_text
    from experiments.feedback.plan_changes import count_plan_changes, planner_cases
    from experiments.kitchen.memory_bridge import MemoryBridge, record_study_facts
    from experiments.kitchen.world import KitchenWorld, ScriptedProvider
    from perception.text import default_text_encoder

    torch.set_num_threads(1)
    progress = progress or (lambda message: logger.info(message))
    out = Path(config.out)
    encoder = default_text_encoder(config.encoder)
    planner = GroundedPlanner(encoder)
    env = HouseholdEnv(task="none")
    world = KitchenWorld(env)
    provider = ScriptedProvider(world)
    rows: list[dict[str, Any]] = []
    worlds: dict[str, Any] = {}
    all_facts = []
    started = time.perf_counter()
    try:
        for seed in config.seeds:
            variables = world_variables(seed)
            world.reset(seed, variables)
            deviating = deviations(env.variables(), env.scene.defaults)
            folder = out / f"world_{seed}"
            facts = study_world(seed, deviating, config, folder, progress)
            store = folder / "memory.sqlite"
            store.unlink(missing_ok=True)
            record_study_facts(store, facts, encoder)
            bridge = MemoryBridge(store, encoder)
            try:
                memory = bridge.planner_memory()
            finally:
                bridge.close()
            all_facts += list(memory.causal_facts())
            worlds[str(seed)] = {"variables": variables,
                                 "planner_facts": [[f.subject, f.relation, f.object, f.confidence, f.evidence]
                                                   for f in memory.causal_facts()]}
            for arm, arm_memory in (("without", None), ("with", memory)):
                agent = EmbodiedAgent(planner, provider, max_replans=config.max_replans, memory=arm_memory)
                for instruction in (*config.instructions, *config.controls):
                    row = run_episode(agent, world, seed, variables, instruction)
                    rows.append({"seed": seed, "arm": arm, "instruction": instruction,
                                 "control": instruction in config.controls, **row})
            mine = [r for r in rows if r["seed"] == seed and not r["control"]]
            progress(f"world {seed}: without {sum(r['success'] for r in mine if r['arm'] == 'without')}"
                     f"/{len(config.instructions)}, with {sum(r['success'] for r in mine if r['arm'] == 'with')}"
                     f"/{len(config.instructions)} successes")
    finally:
        env.close()
    summary = summarise(rows, config)
    summary["worlds"] = worlds
    summary["plan_changes"] = count_plan_changes(planner, planner_cases(), all_facts).to_json()
    summary["seconds"] = round(time.perf_counter() - started, 1)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    atomic_write_text(out / "episodes.json", json.dumps(rows, indent=1))
    return summary


def _rate_line(label: str, r: dict[str, Any]) -> str:
    interval = f"[{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"
    return f"{label:<32}{r['successes']:>5}/{r['trials']:<6}{r['rate']:>8.1%}{interval:>18}"


def format_summary(summary: dict[str, Any]) -> str:
    """The terminal table of `run_scenario`'s summary."""
    lines = [f"{'arm':<32}{'successes':>12}{'rate':>8}{'95% CI':>18}"]
    for arm, label in (("without", "without causal knowledge"), ("with", "with causal knowledge")):
        lines.append(_rate_line(label, summary["arms"][arm]))
    for arm, r in summary["controls"].items():
        lines.append(_rate_line(f"control (push), {arm}", r))
    seeds = ", ".join(f"{s}: {v['without']['rate']:.0%} -> {v['with']['rate']:.0%}"
                      for s, v in summary["per_seed"].items())
    changes = summary["plan_changes"]
    gain = summary["per_seed_gain_points"]
    lines += [f"gain: {summary['gain_points']:+.1f} points (per seed: mean {gain['mean']:+.1f},"
              f" min {gain['min']:+.1f}); paired episodes won only with knowledge: "
              f"{summary['paired']['with_only']}, only without: {summary['paired']['without_only']}",
              f"per seed (without -> with): {seeds}",
              f"control choices changed: {summary['control_choices_changed']}",
              f"planner test instructions, with every world's facts: {changes['named_changed']} of "
              f"{changes['named_instructions']} object-naming plans changed; {changes['choice_changed']} of "
              f"{changes['choice_instructions']} choice-leaving plans changed"]
    return "\n".join(lines)
