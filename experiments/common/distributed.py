"""Fan work out over Ray: a local instance by default, a cluster with `--ray-address`.

Work items are independent and seeded (an episode, a chain, a training trial), so a Ray run returns
exactly what the serial run returns, in the same order. Workers are Ray actors that build their
expensive state once (an env, a planner with MiniLM loaded) and then serve many items.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from experiments.common.errors import InputError

logger = logging.getLogger(__name__)

INSTALL_HINT = "install the optional extra: pip install 'embodia[distributed]' (make test installs it too)"
CONNECT_TIMEOUT_S = 20.0  # joining a cluster: TCP probe plus ray.init together stay under this


def local_cpus() -> int:
    """CPUs this process may run on (the affinity mask under taskset/cgroups, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the shared --ray, --ray-address and --ray-workers options to a sub-command's parser."""
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


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout, by Python or by processes started meanwhile, to stderr.

    Ray's start-up messages and the daemons it spawns (which inherit file descriptor 1, and pass it
    on to the workers they start) must never mix with a command's `--json` output on stdout.
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (a closed stdout): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a HOST:PORT or ray://HOST:PORT address; None for 'auto' and other forms."""
    text = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def probe_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, with a clear ValueError, when nothing accepts TCP connections at a HOST:PORT address.

    `ray.init(address=...)` retries an unreachable GCS for minutes; a TCP connect with a deadline
    answers in milliseconds for a closed port and within `timeout_s` for an unroutable host.
    """
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise InputError(f"cannot reach the Ray cluster at --ray-address {address!r}: {reason} "
                         f"(is `ray start --head` running there, and is the port open?)") from None


def _init_with_deadline(ray: Any, kwargs: dict[str, Any], address: str, timeout_s: float) -> None:
    """`ray.init(**kwargs)` for joining a cluster, given up after `timeout_s` with a ValueError."""
    outcome: dict[str, BaseException] = {}

    def connect() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=connect, name="ray-connect", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise InputError(f"could not join the Ray cluster at --ray-address {address!r} within {timeout_s:g} s "
                         f"(something answers on that port, but not a Ray head node of a compatible version?)")
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, (ConnectionError, RuntimeError, TimeoutError)):
            raise InputError(f"could not join the Ray cluster at --ray-address {address!r}: {error}") from error
        raise error


def init_ray(address: str | None = None, num_cpus: int | None = None,
             connect_timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """Start (or join) Ray once per process.

    A local instance gets `num_cpus` CPUs, by default the CPUs this process may use (never a count
    derived from the work). Joining `address` is bounded by `connect_timeout_s`: an unreachable or
    silent address raises ValueError instead of hanging. Ray's chatter goes to stderr, never stdout.
    """
    ray = require_ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False,
                              "configure_logging": False}
    if address:
        kwargs["address"] = address
    else:
        if num_cpus is not None and num_cpus < 1:
            raise InputError(f"the number of CPUs for Ray must be >= 1, got {num_cpus}")
        kwargs["num_cpus"] = num_cpus or local_cpus()
    # Workers import the project from the driver's working directory when it is not installed.
    kwargs["runtime_env"] = {"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                          "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}}
    with _stdout_to_stderr():
        if address:
            probe_address(address, connect_timeout_s)
            _init_with_deadline(ray, kwargs, address, connect_timeout_s)
        else:
            ray.init(**kwargs)
    return ray


def shutdown_ray() -> None:
    """Shut down this process's Ray connection if one was started; a no-op when Ray is absent or idle."""
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


def pool_size(workers: int | None, cpus: float, items: int | None = None) -> int:
    """Actors to start: `workers` (default: the CPUs Ray reports), capped by Ray's CPUs and by the items.

    Each actor holds a full copy of the work's state (an env, MiniLM), so the pool
    size, not the number of items, sets the memory used.
    """
    if workers is not None and workers < 1:
        raise InputError(f"--ray-workers must be >= 1, got {workers}")
    available = max(1, int(cpus))
    count = min(workers or available, available)
    if workers is not None and workers > available:
        logger.warning("--ray-workers %d exceeds the %d CPUs Ray reports; starting %d workers",
                       workers, available, available)
    return max(1, min(count, items) if items else count)


class WorkerPool:
    """Ray actors that each build `make_state()` once and then apply `work(state, item)` to many items.

    The pool has `pool_size(workers, CPUs in the cluster, max_items)` actors of one CPU each, so the
    number of processes (and the memory) is set by the cluster, not by how much work there is. The
    cluster's total is used, not `available_resources()`: CPUs of a just-closed pool are freed
    asynchronously, and counting them out would shrink the next pool.
    """

    def __init__(self, make_state: Callable[[], Any], work: Callable[[Any, Any], Any], workers: int | None = None,
                 address: str | None = None, max_items: int | None = None) -> None:
        self._ray = init_ray(address)
        count = pool_size(workers, self._ray.cluster_resources().get("CPU", 1), max_items)
        actor_class = self._ray.remote(num_cpus=1)(_Worker)
        self._actors = [actor_class.remote(make_state, work) for _ in range(count)]
        logger.info("Ray pool: %d workers", count)

    @property
    def size(self) -> int:
        """How many actors (worker processes) the pool holds."""
        return len(self._actors)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill every actor, freeing the memory each holds; the pool cannot be used afterwards."""
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
    with WorkerPool(make_state, work, workers, address, max_items=len(items)) as pool:
        return pool.map(items, on_result)
