"""The error policy holds in the code: input checks raise a package's InputError, plain raises are bugs.

The CLI reports an exception as bad input (exit 2, one line) only when its class carries the ``input_error``
mark; a plain ``raise ValueError(...)`` / ``raise KeyError(...)`` is reported as an internal error (exit 3, with
a traceback). So each plain raise in the project must be a deliberate "this is a bug" (a broken invariant, an
encoder returning the wrong shape). This test counts them per file against the reviewed list below: a new plain
raise fails it until someone decides. Validating input? Raise the package's ``errors.InputError`` (or
``UnknownNameError`` / ``InputTypeError``). Catching a broken invariant? Add one to the file's count here.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "envs", "perception", "causal", "memory", "experiments")

# Reviewed plain raises: each guards an internal invariant, not user input.
INTERNAL_RAISES = {
    "agent/planner/grounded.py": 1,  # from_stage out of range: a caller's bug
    "agent/planner/plan.py": 1,  # step_stages length mismatch
    "agent/policy_features.py": 3,  # feature shapes the env and policy agree on
    "agent/policy_io.py": 1,  # describing a space type the policies never have
    "causal/data.py": 1,  # columns of unequal length built by our own code
    "causal/factors.py": 1,  # a variable missing from every factor
    "causal/montecarlo.py": 1,  # KeyError(target) on an internal lookup
    "envs/household.py": 2,  # action shape / NaN actions from a policy
    "envs/chain_starts.py": 1,  # a task the chain-start table lacks
    "envs/sim.py": 3,  # physics settings, bodies, dynamics keys inside the simulator
    "experiments/common/media.py": 1,  # no frames to write
    "experiments/kitchen/perceived_world.py": 1,  # a skill with no perceived check: the code lacks one
    "experiments/kitchen/world.py": 1,  # a task with no oracle verdict: the referee lacks one
    "experiments/common/stats.py": 3,  # Wilson interval / mean_std called with impossible counts
    "experiments/imitation/dataset.py": 2,  # episodes our own recorder assembled
    "experiments/training/actors.py": 1,  # the actors VecEnv wrapped by mistake
    "experiments/training/language.py": 1,  # an encoder returning the wrong number of vectors
    "experiments/training/policy_eval.py": 1,  # summarising zero episodes
    "experiments/training/vec.py": 1,  # SplitVecEnv with fewer than two envs
    "memory/continual_metrics.py": 4,  # learning curves built by our own code
    "memory/index.py": 4,  # encoder output shapes and stored dimensions
    "memory/store.py": 1,  # use after close
    "perception/alignment.py": 1,
    "perception/encoders.py": 1,
    "perception/frames.py": 1,
    "perception/fusion.py": 1,
    "perception/goal_wrapper.py": 3,
    "perception/layout.py": 4,  # observation-space layouts the env defines
    "perception/scene_estimator.py": 1,  # estimate() called with a batch
}


def _plain_raises() -> Counter[str]:
    counts: Counter[str] = Counter()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                        and isinstance(node.exc.func, ast.Name) and node.exc.func.id in ("ValueError", "KeyError")):
                    counts[str(path.relative_to(ROOT))] += 1
    return counts


def test_every_plain_raise_is_a_reviewed_internal_error() -> None:
    found = _plain_raises()
    grown = {path: (count, INTERNAL_RAISES.get(path, 0)) for path, count in found.items()
             if count > INTERNAL_RAISES.get(path, 0)}
    assert not grown, (
        "plain ValueError/KeyError raises the CLI would report as bugs (exit 3), as {file: (found, reviewed)}: "
        f"{grown}. If they check user input, raise the package's errors.InputError / UnknownNameError instead; "
        "if they guard an internal invariant, raise the count in INTERNAL_RAISES.")


def test_exception_classes_are_marked_input_errors_or_not_value_errors() -> None:
    """A project exception that subclasses ValueError/KeyError/TypeError directly is invisible to the CLI's check."""
    unmarked = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "errors.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(
                        isinstance(base, ast.Name) and base.id in ("ValueError", "KeyError", "TypeError")
                        for base in node.bases):
                    unmarked.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not unmarked, f"derive these from the package's errors.InputError (bad input) or RuntimeError: {unmarked}"


def test_every_package_marks_its_input_errors() -> None:
    for package in ("agent", "envs", "perception", "causal", "memory"):
        text = (ROOT / package / "errors.py").read_text()
        assert "class InputError(ValueError)" in text and "input_error = True" in text, package
    assert "input_error = True" in (ROOT / "experiments/common/errors.py").read_text()
