"""A newcomer's first commands answer at once: building the parser and a causal query import nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.bench import startup

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pybullet", "scipy", "ray", "transformers", "stable_baselines3")


def _loaded_after(code: str) -> list[str]:
    """The HEAVY modules present in sys.modules after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_building_the_parser_imports_nothing_heavy() -> None:
    assert _loaded_after("from experiments.cli import build_parser\nbuild_parser()") == []


def test_every_sub_command_registers_without_heavy_imports() -> None:
    # Each command module on its own, so one that slips does not hide behind another's import.
    from experiments.cli import COMMAND_MODULES

    code = ("import argparse, importlib, importlib.util\n"
            "sub = argparse.ArgumentParser().add_subparsers()\n"
            f"for name in {COMMAND_MODULES!r}:\n"
            "    if importlib.util.find_spec('experiments.commands.' + name):\n"
            "        importlib.import_module('experiments.commands.' + name).register(sub)")
    assert _loaded_after(code) == []


def test_causal_query_on_a_small_model_imports_nothing_heavy() -> None:
    heavy = startup.heavy_imports(startup.commands()["embodia causal query (chain_linear, 4 queries)"])
    assert not set(heavy) & set(HEAVY), heavy


def test_the_probe_sees_a_heavy_import_when_there_is_one() -> None:
    # The check above must be able to fail: a command that does load the env reports pybullet.
    assert "pybullet" in _loaded_after("import envs.sim")


def test_lazy_task_choices_still_refuse_an_unknown_task(capsys) -> None:
    from experiments.cli import main

    assert main(["train", "--task", "juggle"]) == 2  # a usage error: one line on stderr
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "invalid choice: 'juggle'" in err and "'reach'" in err and "'place_in'" in err


def test_bench_startup_measures_both_commands(capsys) -> None:
    figures = startup.measure(repeats=1)
    assert set(startup.commands()) <= set(figures)
    for row in figures.values():
        assert row["wall_s"] > 0 and row["cpu_s"] >= 0 and row["runs"] == 1
    assert figures["embodia --help"]["heavy_modules"] == []
    with pytest.raises(ValueError, match="--repeats must be at least 1"):
        startup.measure(repeats=0)


def test_memory_query_on_a_fresh_clone_answers_before_loading_minilm(tmp_path: Path) -> None:
    missing = tmp_path / "memory.sqlite"
    code = ("import contextlib, io\nfrom experiments.cli import main\n"
            f"with contextlib.redirect_stderr(io.StringIO()) as err:\n"
            f"    assert main(['memory', 'query', 'where is the mug', '--db', {str(missing)!r}]) == 2\n"
            "assert 'embodia run' in err.getvalue() and 'knowledge store not found' in err.getvalue()")
    assert _loaded_after(code) == []  # MiniLM (transformers, torch) was never loaded just to say the store is missing
