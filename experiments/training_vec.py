"""Parallel environments that fail loudly: a dead or hung worker becomes an error naming it, never a hang.

SB3's `SubprocVecEnv` waits on each worker's pipe with a blocking `recv()`. If a worker process dies
(an exception in the env, a segfault, the OOM killer) the parent gets a bare `EOFError`, or waits forever
if the worker is stuck. `CheckedSubprocVecEnv` polls each pipe with a timeout and turns either case into
`EnvWorkerError` with the worker's index, pid, exit code and, when the env raised, the exception's text
(written by `CrashNoteWrapper` inside the worker just before it dies).
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import SubprocVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from stable_baselines3.common.vec_env.subproc_vec_env import _stack_obs

from experiments.io import atomic_write_text

POLL_SLICE = 0.5
"""Seconds between liveness checks while waiting for a worker."""
CLOSE_WAIT = 5.0
"""Seconds `close` waits for a live worker's outstanding answer before sending it the close command."""


class EnvWorkerError(RuntimeError):
    """An environment worker process crashed or stopped answering."""


def crash_note_path(directory: str | Path, rank: int) -> Path:
    return Path(directory) / f"worker_{rank}.crash.txt"


class CrashNoteWrapper(gym.Wrapper):
    """Inside a worker: record the exception that is about to kill it, for the parent's error message."""

    def __init__(self, env: gym.Env, note_path: str | Path) -> None:
        super().__init__(env)
        self.note_path = Path(note_path)

    def _note(self, where: str, error: BaseException) -> None:
        summary = "".join(traceback.format_exception_only(type(error), error)).strip()
        atomic_write_text(self.note_path, f"{where}: {summary}\n")

    def reset(self, **kwargs: Any):
        try:
            return self.env.reset(**kwargs)
        except Exception as error:
            self._note("reset", error)
            raise

    def step(self, action):
        try:
            return self.env.step(action)
        except Exception as error:
            self._note("step", error)
            raise


class CheckedSubprocVecEnv(SubprocVecEnv):
    """`SubprocVecEnv` whose waits time out and whose dead workers are named.

    Args:
        env_fns: one constructor per worker.
        timeout: seconds to wait for any single answer.
        note_dir: where `CrashNoteWrapper` leaves its notes (None: no notes).
        start_method: multiprocessing start method (SB3's default when None).
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]], timeout: float = 300.0,
                 note_dir: str | Path | None = None, start_method: str | None = None) -> None:
        self.timeout = timeout
        self._pending: set[int] = set()
        self.note_dir = Path(note_dir) if note_dir is not None else None
        if self.note_dir is not None:
            for rank in range(len(env_fns)):
                crash_note_path(self.note_dir, rank).unlink(missing_ok=True)
        super().__init__(env_fns, start_method=start_method)

    def _receive(self, rank: int, doing: str) -> Any:
        """The worker's answer; polls in short slices so a dead worker is noticed even if its pipe stays open
        (with the fork start method, sibling workers inherit each other's pipe ends)."""
        remote, process = self.remotes[rank], self.processes[rank]
        deadline = time.monotonic() + self.timeout
        try:
            while not remote.poll(min(POLL_SLICE, max(0.0, deadline - time.monotonic()))):
                if not process.is_alive():
                    raise EnvWorkerError(self._death_message(rank, doing))
                if time.monotonic() >= deadline:
                    raise EnvWorkerError(f"environment worker {rank} (pid {process.pid}) did not answer "
                                         f"{doing} within {self.timeout:.0f} s; it looks hung")
            answer = remote.recv()
            self._pending.discard(rank)
            return answer
        except (EOFError, ConnectionResetError, BrokenPipeError) as error:
            raise EnvWorkerError(self._death_message(rank, doing)) from error

    def _death_message(self, rank: int, doing: str) -> str:
        process = self.processes[rank]
        process.join(timeout=5)
        code = process.exitcode
        how = f"exit code {code}" if code is None or code >= 0 else f"killed by signal {-code}"
        message = f"environment worker {rank} (pid {process.pid}) died during {doing} ({how})"
        if self.note_dir is not None:
            note = crash_note_path(self.note_dir, rank)
            if note.is_file():
                message += f": {note.read_text().strip()}"
        return message

    def _send(self, rank: int, message: tuple[str, Any], doing: str) -> None:
        try:
            self.remotes[rank].send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError) as error:
            raise EnvWorkerError(self._death_message(rank, doing)) from error

    def step_async(self, actions) -> None:
        for rank, action in enumerate(actions):
            self._send(rank, ("step", action), "step")
            self._pending.add(rank)
        self.waiting = True

    def step_wait(self) -> VecEnvStepReturn:
        results = [self._receive(rank, "step") for rank in range(len(self.remotes))]
        self.waiting = False
        obs, rews, dones, infos, self.reset_infos = zip(*results, strict=True)
        return _stack_obs(obs, self.observation_space), np.stack(rews), np.stack(dones), infos

    def reset(self) -> VecEnvObs:
        for rank in range(len(self.remotes)):
            self._send(rank, ("reset", (self._seeds[rank], self._options[rank])), "reset")
            self._pending.add(rank)
        results = [self._receive(rank, "reset") for rank in range(len(self.remotes))]
        obs, self.reset_infos = zip(*results, strict=True)
        self._reset_seeds()
        self._reset_options()
        return _stack_obs(obs, self.observation_space)

    def close(self) -> None:
        """Close what still lives; a dead worker is terminated rather than waited on forever."""
        if self.closed:
            return
        for rank, process in enumerate(self.processes):
            if process.is_alive():
                try:
                    if rank in self._pending and self.remotes[rank].poll(CLOSE_WAIT):
                        self.remotes[rank].recv()  # drain the answer nobody collected after a sibling failed
                    self.remotes[rank].send(("close", None))
                except (BrokenPipeError, ConnectionResetError, EOFError):
                    process.terminate()
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
        self.closed = True


def default_start_method() -> str:
    """`forkserver` where available (safe with torch threads), else `spawn` (SB3's own choice)."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
