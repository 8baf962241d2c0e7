"""Start-up time: `embodia --help` and a small `embodia causal query`, and the heavy modules each imports.

A newcomer's first commands should answer at once. Each command runs in a fresh interpreter (a subprocess,
as a user's shell would start it); the figures are the median wall time and the median CPU time (user + system
of the child) over `--repeats` runs, next to a bare `python -c pass` for the interpreter's own floor. CPU time
is the steadier figure on a shared machine: time spent waiting for a core is not charged to it. A second pass
runs each command once more in-process after a `sys.modules` snapshot and lists the heavy modules it loaded
(torch, pybullet, scipy, ...), which is what makes start-up slow when it is.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from experiments.common.errors import InputError

# Modules that cost a noticeable share of a second to import; none belongs in parsing or a causal query.
HEAVY_MODULES = ("torch", "pybullet", "scipy", "ray", "transformers", "stable_baselines3", "matplotlib",
                 "gymnasium", "sklearn", "pandas", "panda_gym")
REPO_ROOT = Path(__file__).resolve().parents[2]
SMALL_MODEL = REPO_ROOT / "tests" / "data" / "causal" / "chain_linear.json"
SMALL_QUERIES = REPO_ROOT / "tests" / "data" / "causal" / "chain_queries.json"

# Runs a CLI command in-process and prints, as JSON, which heavy modules were loaded by the time it ended.
_PROBE = """
import contextlib, io, json, sys
from experiments.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[2:])
    except SystemExit:
        pass
heavy = json.loads(sys.argv[1])
print(json.dumps(sorted(name for name in heavy if name in sys.modules)))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--repeats: how many fresh interpreters per command (the median is reported)."""
    parser.add_argument("--repeats", type=int, default=7, help="runs per command (median taken)")


def commands() -> dict[str, list[str]]:
    """The measured command lines (arguments after `embodia`), by label."""
    return {
        "embodia --help": ["--help"],
        "embodia causal query (chain_linear, 4 queries)": ["causal", "query", str(SMALL_MODEL), str(SMALL_QUERIES)],
    }


def _child_env() -> dict[str, str]:
    """This checkout first on the path, offline, one thread: the child imports the code being measured."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    return env


def _time_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and child CPU seconds of one fresh interpreter running `argv`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def heavy_imports(cli_args: list[str], env: dict[str, str] | None = None) -> list[str]:
    """The names in HEAVY_MODULES that running `embodia CLI_ARGS` imports (in a fresh interpreter)."""
    argv = [sys.executable, "-c", _PROBE, json.dumps(HEAVY_MODULES), *cli_args]
    done = subprocess.run(argv, env=env or _child_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"probe of embodia {' '.join(cli_args)} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(repeats: int) -> dict[str, dict[str, object]]:
    """Median wall and CPU seconds per command, the interpreter floor, and each command's heavy imports."""
    if repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {repeats}")
    env = _child_env()
    lines = {"python -c pass (interpreter floor)": [sys.executable, "-c", "pass"]}
    lines.update({label: [sys.executable, "-m", "experiments.cli", *args] for label, args in commands().items()})
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in lines}
    for _ in range(repeats):  # interleaved, so a burst of load hits every command alike
        for label, argv in lines.items():
            samples[label].append(_time_once(argv, env))
    results: dict[str, dict[str, object]] = {}
    for label, runs in samples.items():
        results[label] = {
            "wall_s": statistics.median(wall for wall, _ in runs),
            "cpu_s": statistics.median(cpu for _, cpu in runs),
            "runs": len(runs),
        }
    for label, args in commands().items():
        results[label]["heavy_modules"] = heavy_imports(args, env)
    return results


def run(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """Measure and print the table; return the figures for --json-out."""
    results = measure(args.repeats)
    print(f"start-up, median of {args.repeats} fresh interpreters ({os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}):")
    print(f"{'command':50s} {'wall s':>7s} {'CPU s':>7s}  heavy modules imported")
    for label, row in results.items():
        heavy = ", ".join(row.get("heavy_modules", [])) or ("none" if "heavy_modules" in row else "")
        print(f"{label:50s} {row['wall_s']:7.3f} {row['cpu_s']:7.3f}  {heavy}")
    return results
