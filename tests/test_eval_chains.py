"""CALVIN-style chains: feasible instruction sampling, and Ray giving exactly the serial numbers."""

from __future__ import annotations

import pytest

from experiments.cli import build_parser
from experiments.kitchen.chains import candidate_tasks, summarise


def _strip_timing(value):
    if isinstance(value, dict):
        return {k: _strip_timing(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_strip_timing(v) for v in value]
    return value


def test_candidates_respect_the_scene() -> None:
    facts = [["on", "red_block", "table"], ["on", "green_block", "red_block"], ["in", "blue_block", "drawer"],
             ["on", "yellow_block", "table"], ["on", "mug", "table"], ["closed", "drawer"], ["gripper_empty"]]
    options = candidate_tasks(facts, push_ok=lambda x, d: True)
    assert ("open", ("drawer",)) in options and ("close", ("drawer",)) not in options
    assert not any(t == "push" and a[0] == "red_block" for t, a in options), "red has a block on it"
    assert not any(a and a[0] == "blue_block" for t, a in options), "blue is shut in the drawer"
    assert ("place_on", ("yellow_block", "red_block")) not in options, "red is not free"
    assert ("place_in", ("mug", "bowl")) in options
    assert not any(t == "push" for t, _ in candidate_tasks(facts, push_ok=lambda x, d: False))


def test_ray_chains_match_serial_chains_exactly(tmp_path) -> None:
    """The serial run is a fresh process, as every CLI run and every Ray worker is.

    Not this test process: MKL's float results depend on the process's allocation history, and after an earlier
    test ran the MiniLM encoder here, a learned place took 55 control steps instead of 54 (RESULTS.md, fourteenth
    session; with MKL_CBWR=AVX2,STRICT both took 53).
    """
    import json
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("ray")
    from experiments.commands.eval_chains import run_chains
    from experiments.common.distributed import shutdown_ray

    base = ["eval-chains", "--chains", "3", "--length", "2", "--seed", "40", "--encoder", "hashing"]
    cli = Path(sys.executable).with_name("embodia")
    done = subprocess.run([str(cli), *base, "--out", str(tmp_path / "serial")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    serial = json.loads((tmp_path / "serial" / "chains.json").read_text())
    try:
        parallel = run_chains(build_parser().parse_args([*base, "--ray", "--ray-workers", "2"]))
    finally:
        shutdown_ray()
    assert [r.completed for r in parallel] == [chain["completed"] for chain in serial]
    records = json.loads(json.dumps([r.records for r in parallel]))  # as the CLI writes them
    assert _strip_timing(records) == _strip_timing([chain["records"] for chain in serial])
    summary = json.loads((tmp_path / "serial" / "summary.json").read_text())
    summary.pop("agent")  # how the CLI built its agent, which run_chains does not report
    assert json.loads(json.dumps(summarise(parallel, 2))) == summary


def test_the_oracle_referees_the_task_drawn_not_the_goal_the_agent_read() -> None:
    """An agent that does nothing and reports success (as one that misread "slide the drawer out" as "close it" did,
    with the drawer shut) goes on down the chain, but the referee accepts none of its instructions."""
    from envs.household import HouseholdEnv
    from experiments.kitchen.chains import run_chain
    from experiments.kitchen.world import KitchenWorld

    class Boaster:
        def run(self, world, instruction):
            record = {"instruction": instruction, "success": True, "steps": []}
            return type("Record", (), {"to_json": lambda self: record})()

    env = HouseholdEnv(task="none")
    try:
        result = run_chain(Boaster(), KitchenWorld(env), seed=3, length=3)  # type: ignore[arg-type]
    finally:
        env.close()
    assert result.successes == [True, True, True] and result.believed == 3
    assert result.verified == [False, False, False] and result.completed == 0
    summary = summarise([result], 3)
    assert summary["average_completed_length"] == 0 and summary["agent_completed_length"] == 3
    assert summary["agent_verdicts"]["false_success"] == 3
