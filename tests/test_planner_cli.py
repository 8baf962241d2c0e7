"""`embodia plan`: JSON and text output, scene options, refusals with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_plan(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args, "--encoder", "hashing"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_output_matches_the_contract(capsys) -> None:
    code, out, _err = run_plan(capsys, "put the yellow block in the drawer and close it", "--json")
    assert code == 0
    assert json.loads(out) == {
        "goal": [{"predicate": "in", "args": ["yellow_block", "drawer"]}, {"predicate": "closed", "args": ["drawer"]}],
        "plan": [{"skill": "open", "args": ["drawer"]}, {"skill": "pick", "args": ["yellow_block"]},
                 {"skill": "place", "args": ["drawer"]}, {"skill": "close", "args": ["drawer"]}],
    }


def test_trace_option_adds_scores(capsys) -> None:
    code, out, _err = run_plan(capsys, "put the red block in the bowl", "--json", "--trace")
    data = json.loads(out)
    assert code == 0 and data["trace"]["steps"][0]["chosen"] == "pick(red_block)"
    assert data["stages"] == [["in(red_block, bowl)"]]


def test_readable_output(capsys) -> None:
    code, out, _err = run_plan(capsys, "stack the blue block on the green block")
    assert code == 0
    assert "1. pick(blue_block)  -- pick up the blue block" in out and "on(blue_block, green_block)" in out


def test_scene_facts_and_memory_options(capsys, tmp_path: Path) -> None:
    code, out, _err = run_plan(capsys, "put the red block in the bowl", "--json", "--objects", "red_block,bowl",
                               "--facts", '[["in", "red_block", "bowl"]]')
    assert code == 0 and json.loads(out)["plan"] == []
    memory = tmp_path / "memory.json"
    memory.write_text(json.dumps({"facts": [["red_block", "in", "drawer", 0.9]]}))
    code, out, _err = run_plan(capsys, "put the red block in the bowl", "--json", "--memory", str(memory))
    assert [s["skill"] for s in json.loads(out)["plan"]] == ["open", "pick", "place"]


@pytest.mark.parametrize(
    ("instruction", "extra", "phrase"),
    [
        ("put the purple block in the bowl", [], "the purple block"),
        ("put the red block in the fridge", [], "the fridge"),
        ("grab the banana", [], "the banana"),
        ("put the red block in the drawer", ["--objects", "red_block", "bowl"], "the drawer"),
        ("", [], "nothing to do"),
        ("zorp blip", [], "zorp blip"),
    ],
)
def test_refusals_exit_2_and_name_the_phrase(capsys, instruction: str, extra: list[str], phrase: str) -> None:
    code, out, err = run_plan(capsys, instruction, "--json", *extra)
    assert code == 2 and out == ""
    assert err.startswith("embodia plan: error:") and phrase in err


def test_bad_facts_are_user_errors(capsys) -> None:
    code, _out, err = run_plan(capsys, "open the drawer", "--facts", "[not json")
    assert code == 2 and "--facts must be JSON" in err


def test_console_exit_code_in_a_real_process() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "plan", "put the banana in the bowl", "--encoder", "hashing"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2
    assert "the banana" in result.stderr and result.stdout == ""
