"""Fan work out over Ray: a local instance by default, a cluster with `--ray-address`.

Work items are independent and seeded (an episode, a chain, a training trial), so a Ray run returns
exactly what the serial run returns, in the same order. Workers are Ray actors that build their
expensive state once (an env, a planner with MiniLM loaded) and then serve many items.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from experiments.common.errors import InputError

logger = logging.getLogger(__name__)

INSTALL_HINT = "install the optional extra: pip install 'embodia[distributed]' (make test installs it too)"


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray", action="store_true", help="spread the work over Ray workers")
    parser.add_argument("--ray-address", default=None,
                        help="Ray cluster to join ('auto' or HOST:PORT); default: start a local instance")
    parser.add_argument("--ray-workers", type=int, default=None,
                        help="number of Ray workers (default: the CPUs Ray sees)")


def require_ray() -> Any:
    """Import Ray or explain how to get it."""
    try:
        import ray
    except ImportError:
        raise InputError(f"Ray is not installed; {INSTALL_HINT}") from None
    return ray


def init_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Start (or join) Ray once per process; a local instance is limited to `num_cpus` CPUs."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False,
                              "configure_logging": False}
    if address:
        kwargs["address"] = address
    else:
        kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
    # Workers import the project from the driver's working directory when it is not installed.
    kwargs["runtime_env"] = {"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                          "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}}
    ray.init(**kwargs)
    return ray


def shutdown_ray() -> None:
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()


class _Worker:
    """Holds one `make_state()` result and applies `work(state, item)` to items sent to it."""

    def __init__(self, make_state: Callable[[], Any], work: Callable[[Any, Any], Any]) -> None:
        self._state = make_state()
        self._work = work

    def run(self, item: Any) -> Any:
        return self._work(self._state, item)


class WorkerPool:
    """Ray actors that each build `make_state()` once and then apply `work(state, item)` to many items."""

    def __init__(self, make_state: Callable[[], Any], work: Callable[[Any, Any], Any], workers: int | None = None,
                 address: str | None = None) -> None:
        self._ray = init_ray(address, workers)
        count = workers or max(1, int(self._ray.available_resources().get("CPU", 1)))
        actor_class = self._ray.remote(num_cpus=1)(_Worker)
        self._actors = [actor_class.remote(make_state, work) for _ in range(max(1, count))]

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []

    def map(self, items: Sequence[Any], on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        """Results in input order; `on_result(index, result)` is called as each arrives."""
        ray = self._ray
        results: list[Any] = [None] * len(items)
        pending: dict[Any, tuple[int, Any]] = {}
        queue = list(enumerate(items))
        for actor in self._actors:
            if queue:
                index, item = queue.pop(0)
                pending[actor.run.remote(item)] = (index, actor)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index, actor = pending.pop(done[0])
            results[index] = ray.get(done[0])
            if on_result is not None:
                on_result(index, results[index])
            if queue:
                next_index, item = queue.pop(0)
                pending[actor.run.remote(item)] = (next_index, actor)
        return results


def ray_map(
    make_state: Callable[[], Any], work: Callable[[Any, Any], Any], items: Sequence[Any],
    workers: int | None = None, address: str | None = None, on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """`[work(state, item) for item in items]` over a fresh `WorkerPool`, results in input order."""
    if not items:
        return []
    with WorkerPool(make_state, work, min(workers or len(items), len(items)), address) as pool:
        return pool.map(items, on_result)
