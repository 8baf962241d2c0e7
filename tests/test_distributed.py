"""Ray scale-out: same numbers as the serial run, and a clear message when Ray is missing."""

from __future__ import annotations

import json
import sys

import pytest

from experiments.common.distributed import INSTALL_HINT, WorkerPool, ray_map, require_ray, shutdown_ray
from experiments.kitchen.rollouts import expert_episode_summary as _episode
from experiments.kitchen.rollouts import make_expert_env as _make_env


@pytest.fixture(scope="module")
def local_ray():
    pytest.importorskip("ray", reason=INSTALL_HINT)
    from experiments.common.distributed import init_ray

    ray = init_ray(num_cpus=2)
    yield ray
    shutdown_ray()


def test_ray_episodes_match_the_serial_run_exactly(local_ray) -> None:
    items = [("pick", 3), ("push", 4), ("open", 5), ("place_in", 6)]
    env = _make_env()
    serial = [_episode(env, item) for item in items]
    env.close()
    parallel = ray_map(_make_env, _episode, items, workers=2)
    assert parallel == serial
    assert local_ray.available_resources().get("CPU", 0) <= 2


def test_pool_keeps_input_order_and_reports_progress(local_ray) -> None:
    seen = []
    with WorkerPool(lambda: 10, lambda base, x: base + x, workers=2) as pool:
        results = pool.map(list(range(12)), on_result=lambda index, _: seen.append(index))
    assert results == [10 + x for x in range(12)]
    assert sorted(seen) == list(range(12))


def test_missing_ray_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ValueError, match=r"embodia\[distributed\]"):
        require_ray()


def test_workers_do_not_grow_with_the_number_of_items(local_ray) -> None:
    """2 items or 12, the pool holds at most the 2 CPUs Ray reports (it used to start one actor per item)."""
    import os

    _pid = lambda _state, _item: os.getpid()  # noqa: E731 (pickled by value: workers cannot import this module)
    small = ray_map(lambda: None, _pid, list(range(2)))
    large = ray_map(lambda: None, _pid, list(range(12)))
    assert len(set(small)) <= 2 and len(set(large)) <= 2
    assert local_ray.cluster_resources().get("CPU") == 2  # Ray is never told it has len(items) CPUs
    with WorkerPool(lambda: None, _pid, max_items=12) as pool:
        assert pool.size == 2
    with WorkerPool(lambda: None, _pid, workers=8) as pool:  # more than Ray has would wait forever: capped
        assert pool.size == 2


@pytest.mark.parametrize(("workers", "cpus", "items", "expected"), [
    (None, 2, 12, 2), (None, 2, 1, 1), (8, 2, 100, 2), (1, 16, 100, 1), (None, 0.5, 10, 1), (None, 64, 3, 3),
])
def test_pool_size_follows_the_cpus_not_the_items(workers, cpus, items, expected) -> None:
    from experiments.common.distributed import pool_size

    assert pool_size(workers, cpus, items) == expected


def test_pool_size_refuses_zero_workers() -> None:
    from experiments.common.distributed import pool_size

    with pytest.raises(ValueError, match=r"--ray-workers must be >= 1, got 0"):
        pool_size(0, 2, 4)


def _python(code: str, timeout: float) -> tuple[int, str, str, float]:
    import os
    import subprocess
    import time
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    return done.returncode, done.stdout, done.stderr, time.monotonic() - start


def test_unreachable_ray_address_fails_fast_with_a_clear_error() -> None:
    """A closed port used to hang ray.init for minutes; now the TCP probe answers at once."""
    pytest.importorskip("ray", reason=INSTALL_HINT)
    port = 1  # loopback port 1: nothing listens there
    code = ("from experiments.common.distributed import init_ray\n"
            f"try:\n    init_ray('127.0.0.1:{port}')\nexcept ValueError as e:\n    print(e)\n")
    rc, out, err, seconds = _python(code, timeout=60)
    assert rc == 0, err
    assert f"cannot reach the Ray cluster at --ray-address '127.0.0.1:{port}'" in out and seconds < 30


def test_silent_ray_address_gives_up_at_the_connect_deadline() -> None:
    """Something listens but is no Ray head: ray.init would retry for minutes; the deadline stops it."""
    pytest.importorskip("ray", reason=INSTALL_HINT)
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        code = ("from experiments.common.distributed import init_ray\n"
                f"try:\n    init_ray('127.0.0.1:{port}', connect_timeout_s=3)\nexcept ValueError as e:\n    print(e)\n")
        rc, out, err, seconds = _python(code, timeout=60)
    assert rc == 0, err
    assert f"could not join the Ray cluster at --ray-address '127.0.0.1:{port}' within 3 s" in out
    assert seconds < 30


def test_json_on_stdout_stays_clean_with_ray() -> None:
    """A --json command that uses Ray: stdout is exactly the JSON; Ray's messages and worker output stay off it."""
    pytest.importorskip("ray", reason=INSTALL_HINT)
    code = (
        "import json, logging, warnings\n"
        "logging.basicConfig(level=logging.INFO)\n"  # the CLI's -v: Ray's INFO logs are on too
        "from experiments.common.distributed import ray_map, shutdown_ray\n"
        "def work(state, x):\n"
        "    print('worker says hello', x)\n"
        "    warnings.warn('worker warning')\n"
        "    return x * x\n"
        "def state():\n"
        "    print('building state')\n"
        "    return None\n"
        "results = ray_map(state, work, list(range(4)), workers=1)\n"
        "shutdown_ray()\n"
        "print(json.dumps({'squares': results}))\n"
    )
    rc, out, err, _ = _python(code, timeout=120)
    assert rc == 0, err
    assert json.loads(out) == {"squares": [0, 1, 4, 9]}
