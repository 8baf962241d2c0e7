"""Quiet unless -v: C-level PyBullet prints, model-loading bars and third-party warnings stay off the terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})


def test_pybullet_import_and_connect_print_nothing() -> None:
    done = _run("from envs.sim import PyBulletSim\nsim = PyBulletSim()\nsim.close()\nprint('done')")
    assert done.stdout == "done\n", done.stdout  # no "argv[0]=..." lines from the C connect
    assert "build time" not in done.stderr


def test_quiet_stdout_catches_c_level_writes_and_restores_the_descriptor() -> None:
    code = ("import os\nfrom envs.sim import quiet_stdout\nwith quiet_stdout():\n    os.write(1, b'from C\\n')\n"
            "os.write(1, b'after\\n')")
    assert _run(code).stdout == "after\n"


def test_buffered_c_printf_inside_the_guard_never_comes_out_later() -> None:
    # panda-gym's connect prints "argv[0]=..." through C stdio, which holds it in a buffer when stdout is a pipe
    # and writes it at exit, long after the descriptor is restored, unless the guard flushes it while muted.
    code = ("import ctypes\nfrom envs.sim import quiet_stdout\nlibc = ctypes.CDLL(None)\n"
            "libc.printf(b'before\\n')\nwith quiet_stdout():\n    libc.printf(b'argv[0]=muted\\n')\n"
            "libc.printf(b'after\\n')\nlibc.fflush(None)")
    assert _run(code).stdout == "before\nafter\n"


def test_a_raw_c_level_write_does_reach_stdout() -> None:
    # The check above must be able to fail: without the guard the same write shows.
    assert _run("import os\nos.write(1, b'from C\\n')").stdout == "from C\n"


def test_warnings_hidden_unless_verbose() -> None:
    code = ("import sys, warnings\nfrom experiments.common import quiet\nquiet.configure(verbose={v})\n"
            "warnings.warn('third-party deprecation', DeprecationWarning)\n"
            "warnings.warn('something odd', UserWarning)")
    assert "something odd" not in _run(code.format(v=False)).stderr
    loud = _run(code.format(v=True)).stderr
    assert "something odd" in loud


def test_minilm_loads_without_a_progress_bar() -> None:
    done = _run("from perception.text import MiniLMEncoder\nfrom transformers.utils import logging\n"
                "MiniLMEncoder()\nprint(logging.is_progress_bar_enabled())")
    assert "Loading weights" not in done.stderr and "it/s" not in done.stderr, done.stderr[-300:]
    assert done.stdout.strip() == "True"  # the caller's setting is restored afterwards
