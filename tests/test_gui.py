"""Watching the robot live: render_mode="human" opens PyBullet's GUI where a display exists, else a clear error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from envs.household import HouseholdEnv
from envs.sim import DisplayUnavailableError, PyBulletSim

ROOT = Path(__file__).resolve().parents[1]


def test_human_mode_is_a_declared_render_mode() -> None:
    assert "human" in HouseholdEnv.metadata["render_modes"]
    with pytest.raises(ValueError, match="render_mode"):
        HouseholdEnv(render_mode="window")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="other systems always have a window system")
def test_human_mode_without_a_display_names_what_is_missing(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(DisplayUnavailableError, match=r"DISPLAY environment variable is not set.*xvfb-run"):
        HouseholdEnv(task="reach", render_mode="human")
    with pytest.raises(DisplayUnavailableError):
        PyBulletSim(gui=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 only")
def test_an_unreachable_x_server_is_refused_before_pybullet_tries(monkeypatch) -> None:
    # PyBullet's own GUI connect would end the process from C here; the check must come first.
    monkeypatch.setenv("DISPLAY", ":93517")
    with pytest.raises(DisplayUnavailableError, match="DISPLAY=:93517 does not answer"):
        PyBulletSim(gui=True)


def test_run_gui_without_a_display_exits_2_with_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    done = subprocess.run([sys.executable, "-m", "experiments.cli", "run", "put the mug in the bowl", "--gui",
                           "--encoder", "hashing", "--no-video"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stderr[-500:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("embodia run: error:") and "needs a display" in lines[-1]


def test_gui_flag_is_offered_by_run_and_demo() -> None:
    from experiments.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["run", "x", "--gui"]).gui and parser.parse_args(["demo", "--gui"]).gui
    assert not parser.parse_args(["run", "x"]).gui


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (apt-get install xvfb)")
def test_gui_opens_steps_and_closes_under_xvfb(tmp_path: Path) -> None:
    code = (
        "import numpy as np\n"
        "from envs.household import HouseholdEnv\n"
        "env = HouseholdEnv(task='reach', render_mode='human')\n"
        "obs, info = env.reset(seed=0)\n"
        "assert env.sim.gui and env.render() is None and env.prepare_world() == 0\n"
        "for _ in range(5):\n"
        "    env.step(np.zeros(env.action_space.shape, dtype=np.float32))\n"
        "env.reset(seed=1)\n"  # rebuilt in the GUI's own client, never swapped out of the window
        "shot = env.sim.gui_screenshot(160, 120)\n"
        "assert shot.shape == (120, 160, 3) and shot.std() > 5, shot.std()\n"
        "assert env.video_frame().shape[2] == 3\n"
        "env.close()\n"
        "print('gui ok')\n"
    )
    done = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 640x480x24", sys.executable, "-c", code], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout[-1000:]}\nstderr: {done.stderr[-2000:]}"
    assert done.stdout.strip().splitlines()[-1] == "gui ok"
