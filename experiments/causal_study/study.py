"""`embodia causal study`: interventional vs observational causal study in the kitchen simulator.

The study runs three regimes over the same seeded units (a unit = one scene layout plus a natural
draw of the confounder):

1. interventional: do(treatment = v) through the environment's variables for each requested value,
   giving the true curve E[outcome | do(v)] with intervals (units paired across values by seed);
2. observational: the treatment takes its "natural" value, which, with `--confounded-by`, depends on
   the confounder (e.g. heavier blocks on grippier tables) while the confounder also acts on the outcome;
3. counterfactual: for some observational units, the simulator is restored to the unit's start and
   re-run under every treatment value (`save_state`/`restore_state`): ground truth for the study SCM's
   unit-level counterfactual predictions.

It writes into the run folder: the data (CSV), the fitted study SCM (JSON, usable with
`embodia causal query`), `report.md` with plots, `metrics.json` and `facts.json` (conclusions for the
knowledge store, format in causal/README.md).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.causal_study.arguments import add_study_arguments  # noqa: F401  (its home before the move)
from experiments.causal_study.config import OUTCOMES, StudyConfig  # noqa: F401  (OUTCOMES: read from here too)
from experiments.common.errors import InputError, UnknownNameError
from experiments.common.jsonio import to_json_text

if TYPE_CHECKING:
    from experiments.causal_study.sim import KitchenUnits

logger = logging.getLogger(__name__)
NATURAL_RANGES = {"friction": (0.2, 1.0), "mass": (0.05, 1.0), "damping": (1.0, 10.0)}
SEED_STRIDE = 100_003


def _natural_range(config: StudyConfig) -> tuple[float, float]:
    if config.confounder_range is not None:
        return config.confounder_range
    prop = config.confounder.rsplit(".", 1)[1] if config.confounder else ""
    if prop not in NATURAL_RANGES:
        raise InputError(f"no default natural range for {config.confounder!r}; pass --confounder-range LO,HI")
    return NATURAL_RANGES[prop]


def natural_draws(config: StudyConfig) -> list[dict[str, float]]:
    """Per observational unit: the confounder's value and the treatment's natural value."""
    rng = np.random.default_rng(config.seed)
    n = config.n_observational
    u_confounder, u_own = rng.random(n), rng.random(n)
    low, high = min(config.values), max(config.values)
    units = []
    for i in range(n):
        unit: dict[str, float] = {}
        quantile = u_own[i]
        if config.confounder is not None:
            c_low, c_high = _natural_range(config)
            unit[config.confounder] = float(c_low + u_confounder[i] * (c_high - c_low))
            quantile = config.confounding_strength * u_confounder[i] + (1 - config.confounding_strength) * u_own[i]
        unit[config.treatment] = float(low + quantile * (high - low))
        units.append(unit)
    return units


Progress = Callable[[str], None]


UnitItem = tuple[str, int, dict[str, float]]
"""(regime, seed, scene variables) of one simulated unit: everything needed to re-run it anywhere."""


def unit_items(config: StudyConfig) -> list[UnitItem]:
    """Every unit of the study, observational (some with counterfactual replays) then interventional."""
    draws = natural_draws(config)
    items: list[UnitItem] = []
    for i, variables in enumerate(draws):
        regime = "counterfactual" if i < config.counterfactual_units else "observational"
        items.append((regime, config.seed * SEED_STRIDE + i, variables))
    for value in config.values:
        for i in range(config.episodes):
            variables = {**draws[i % len(draws)], config.treatment: float(value)}
            items.append(("interventional", config.seed * SEED_STRIDE + i, variables))
    return items


def run_unit(runner: KitchenUnits, item: UnitItem, treatment: str, values: tuple[float, ...]) -> Any:
    """Simulate one unit (each rebuilds its scene from the seed, so units can run in any process)."""
    regime, seed, variables = item
    if regime == "counterfactual":
        return runner.run_with_counterfactuals(seed, variables, treatment, list(values))
    return runner.run(seed, variables)


def collect(config: StudyConfig, results: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """The records per regime from `run_unit` results in `unit_items` order (faulty units kept, flagged)."""
    observational, counterfactual, interventional = [], [], []
    for (regime, seed, variables), result in zip(unit_items(config), results, strict=True):
        if regime == "interventional":
            interventional.append({"seed": seed, **_unit(config, variables, result.outcome), "fault": result.fault})
            continue
        factual = result.factual if regime == "counterfactual" else result
        if regime == "counterfactual":
            counterfactual.append(
                {
                    "seed": seed,
                    **_unit(config, variables, factual.outcome),
                    "counterfactuals": [r.outcome for r in result.rebuilt],
                    "restored": [r.outcome for r in result.restored],
                    "replay_difference": result.rebuilt_factual.outcome - factual.outcome,
                    "restore_replay_difference": result.restored_factual.outcome - factual.outcome,
                    "fault": result.fault,
                }
            )
        observational.append({"seed": seed, **_unit(config, variables, factual.outcome), "fault": factual.fault})
    return {"observational": observational, "interventional": interventional, "counterfactual": counterfactual}


def simulate(config: StudyConfig, progress: Progress, ray: bool = False, ray_address: str | None = None,
             ray_workers: int | None = None) -> list[Any]:
    """Run every unit, serially in one env or spread over Ray workers (same units, same results)."""
    from functools import partial

    from experiments.causal_study.sim import KitchenUnits

    items = unit_items(config)
    make_runner = partial(KitchenUnits, config.outcome, config.pushed_object(), config.direction, config.impulse)
    work = partial(run_unit, treatment=config.treatment, values=tuple(config.values))
    done = 0

    def report(_index: int, _result: Any) -> None:
        nonlocal done
        done += 1
        if done % 20 == 0 or done == len(items):
            progress(f"{done}/{len(items)} units simulated")

    if ray:
        from experiments.common.distributed import ray_map

        return ray_map(make_runner, work, items, ray_workers, ray_address, on_result=report)
    runner = make_runner()
    try:
        results = []
        for index, item in enumerate(items):
            results.append(work(runner, item))
            report(index, results[-1])
        return results
    finally:
        runner.close()


def _unit(config: StudyConfig, variables: dict[str, float], outcome: float) -> dict[str, Any]:
    return {
        "treatment": variables[config.treatment],
        "outcome": outcome,
        "confounder": variables.get(config.confounder) if config.confounder else None,
    }


def run_study(config: StudyConfig, progress: Progress | None = None, ray: bool = False,
              ray_address: str | None = None, ray_workers: int | None = None) -> dict[str, Any]:
    """Collect the data in the simulator, analyse it and write the run folder; returns the metrics.

    With `ray`, the units run on Ray workers; every unit rebuilds its scene from its seed, so the data
    and the report are the serial run's.
    """
    from experiments.causal_study.analysis import analyse
    from experiments.causal_study.sim import KitchenUnits

    progress = progress or (lambda message: logger.info(message))
    runner = KitchenUnits(config.outcome, config.pushed_object(), config.direction, config.impulse)
    try:
        known = runner.variable_names()
    finally:
        runner.close()
    for name in filter(None, (config.treatment, config.confounder)):
        if name not in known:
            raise UnknownNameError(f"unknown scene variable {name!r}; valid variables: {', '.join(known)}")
    records = collect(config, simulate(config, progress, ray, ray_address, ray_workers))
    return analyse(config, records, Path(config.out), progress)


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    """Build the frozen config from parsed CLI arguments."""
    if args.confounder_range is not None and len(args.confounder_range) != 2:
        raise InputError(f"--confounder-range expects LO,HI, got {args.confounder_range}")
    out = str(args.out) if args.out else f"runs/causal_{args.treatment.replace('.', '_')}_{args.outcome}"
    return StudyConfig(
        treatment=args.treatment,
        values=tuple(args.values),
        outcome=args.outcome,
        confounder=args.confounder,
        episodes=args.episodes,
        observational_episodes=args.obs_episodes,
        counterfactual_units=args.cf_units,
        seed=args.seed,
        out=out,
        target=args.target,
        direction=args.direction,
        confounder_range=tuple(args.confounder_range) if args.confounder_range else None,
        confounding_strength=args.confounding_strength,
        impulse=args.impulse,
        scene=args.scene,
    )


def run_study_from_args(args: argparse.Namespace) -> int:
    """CLI handler: run the study and print where its report is."""
    config = config_from_args(args)
    metrics = run_study(config, progress=lambda message: print(f"[study] {message}", flush=True),
                        ray=getattr(args, "ray", False), ray_address=getattr(args, "ray_address", None),
                        ray_workers=getattr(args, "ray_workers", None))
    print(to_json_text({k: metrics[k] for k in ("interventional_effect", "naive", "adjusted")}))
    print(f"report: {Path(config.out) / 'report.md'}")
    if getattr(args, "memory", None):
        from experiments.kitchen.memory_bridge import record_study_facts
        from perception.text import default_text_encoder

        facts = json.loads((Path(config.out) / "facts.json").read_text())
        written = record_study_facts(args.memory, facts, default_text_encoder(args.encoder))
        print(f"knowledge store {args.memory}: {written} causal fact(s) written")
    return 0
