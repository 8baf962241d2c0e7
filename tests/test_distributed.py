"""Ray scale-out: same numbers as the serial run, and a clear message when Ray is missing."""

from __future__ import annotations

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
