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
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import (
    CloudpickleWrapper,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)
from stable_baselines3.common.vec_env.patch_gym import _patch_env
from stable_baselines3.common.vec_env.subproc_vec_env import _stack_obs, _worker

from experiments.common.errors import InputError
from experiments.common.io import atomic_write_text

POLL_SLICE = 0.5
"""Seconds between liveness checks while waiting for a worker."""
CLOSE_WAIT = 5.0
"""Seconds `close` waits for a live worker's outstanding answer before sending it the close command."""
IDLE_AFTER = 0.02
"""Seconds a worker waits for its next command before it counts as idle and builds a spare world.

Within a rollout the learner answers in about 1 ms, or 17 ms when it resets an env of its own, so the wait
runs out only while the learner is away for longer: in the PPO update, an evaluation or a checkpoint.
(A 2 ms threshold also caught the learner's resets, and then a build often delayed the next step.)"""


class EnvWorkerError(RuntimeError):
    """An environment worker process crashed or stopped answering."""


def crash_note_path(directory: str | Path, rank: int) -> Path:
    """Where the worker of env `rank` leaves its crash note in `directory` (read by the parent on a crash)."""
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
        """Reset the env; an exception is written to the crash note before it kills the worker."""
        try:
            return self.env.reset(**kwargs)
        except Exception as error:
            self._note("reset", error)
            raise

    def step(self, action):
        """Step the env; an exception is written to the crash note before it kills the worker."""
        try:
            return self.env.step(action)
        except Exception as error:
            self._note("step", error)
            raise


class _IdleWorkPipe:
    """A worker's pipe end that, while no command is waiting, builds spare worlds for the worker's env.

    `recv` waits `IDLE_AFTER` seconds; if nothing came, it asks the env for one more spare world
    (`HouseholdEnv.prepare_world`, up to `spare_worlds`) and waits again. A command that arrives during a
    build waits for it (~15 ms), which happens about once per PPO update; the resets it saves cost ~13 ms
    each, several per rollout. Envs without `prepare_world` are served exactly as SB3's worker serves them.
    """

    def __init__(self, pipe: Any, spare_worlds: int) -> None:
        self.pipe, self.spare_worlds = pipe, spare_worlds
        self.env: gym.Env | None = None

    def recv(self) -> Any:
        core = getattr(self.env, "unwrapped", None)
        prepare = getattr(core, "prepare_world", None)
        while prepare is not None and core.spare_worlds < self.spare_worlds and not self.pipe.poll(IDLE_AFTER):
            prepare()
        return self.pipe.recv()

    def send(self, message: Any) -> None:
        self.pipe.send(message)

    def close(self) -> None:
        self.pipe.close()


def run_worker(pipe: _IdleWorkPipe, parent_pipe: Any, env_fn_wrapper: CloudpickleWrapper) -> None:
    """SB3's worker loop, talking through `pipe`, which is handed the worker's env once it is built."""

    def build() -> gym.Env:
        pipe.env = env_fn_wrapper.var()
        return pipe.env

    _worker(pipe, parent_pipe, CloudpickleWrapper(build))  # type: ignore[arg-type]


def _spare_world_worker(pipe: Any, parent_pipe: Any, env_fn_wrapper: CloudpickleWrapper, spare_worlds: int) -> None:
    """SB3's worker loop, reading commands through `_IdleWorkPipe` so idle time builds the next worlds."""
    run_worker(_IdleWorkPipe(pipe, spare_worlds), parent_pipe, env_fn_wrapper)


class CheckedSubprocVecEnv(SubprocVecEnv):
    """`SubprocVecEnv` whose waits time out and whose dead workers are named.

    Args:
        env_fns: one constructor per worker.
        timeout: seconds to wait for any single answer.
        note_dir: where `CrashNoteWrapper` leaves its notes (None: no notes).
        start_method: multiprocessing start method (SB3's default when None).
        first_rank: run-wide rank of the first env (what errors and crash notes name).
        spare_worlds: worlds each worker builds ahead while it waits for the learner (0: none).
    """

    worker_loop: Callable[..., None] = staticmethod(_spare_world_worker)
    """What each worker process runs, given (pipe, parent pipe, env constructor, spare_worlds)."""

    def __init__(self, env_fns: list[Callable[[], gym.Env]], timeout: float = 300.0,
                 note_dir: str | Path | None = None, start_method: str | None = None, first_rank: int = 0,
                 spare_worlds: int = 0) -> None:
        if spare_worlds < 0:
            raise InputError(f"spare_worlds must be >= 0, got {spare_worlds}")
        self.timeout = timeout
        self.first_rank = first_rank
        """Rank of this object's first env among all of the run's envs (what errors and crash notes use)."""
        self._pending: set[int] = set()
        self.note_dir = Path(note_dir) if note_dir is not None else None
        if self.note_dir is not None:
            for rank in range(len(env_fns)):
                crash_note_path(self.note_dir, first_rank + rank).unlink(missing_ok=True)
        self._start_workers(env_fns, start_method or default_start_method(), spare_worlds)

    def _start_workers(self, env_fns: list[Callable[[], gym.Env]], start_method: str, spare_worlds: int) -> None:
        """`SubprocVecEnv.__init__` with our worker loop (SB3's own, plus idle-time world building)."""
        self.waiting = False
        self.closed = False
        ctx = mp.get_context(start_method)
        self.remotes, self.work_remotes = zip(*[ctx.Pipe() for _ in env_fns], strict=True)
        self.processes = []
        for work_remote, remote, env_fn in zip(self.work_remotes, self.remotes, env_fns, strict=True):
            args = (work_remote, remote, CloudpickleWrapper(env_fn), spare_worlds)
            process = ctx.Process(target=type(self).worker_loop, args=args, daemon=True)
            process.start()
            self.processes.append(process)
            work_remote.close()
        self._send(0, ("get_spaces", None), "start-up")
        observation_space, action_space = self._receive(0, "start-up")
        VecEnv.__init__(self, len(env_fns), observation_space, action_space)

    def _receive(self, rank: int, doing: str) -> Any:
        """The worker's answer, or an error naming the worker if it died or timed out.

        Polls in short slices so a dead worker is noticed even if its pipe stays open (with the fork start
        method, sibling workers inherit each other's pipe ends).
        """
        remote, process = self.remotes[rank], self.processes[rank]
        deadline = time.monotonic() + self.timeout
        try:
            while not remote.poll(min(POLL_SLICE, max(0.0, deadline - time.monotonic()))):
                if not process.is_alive():
                    raise EnvWorkerError(self._death_message(rank, doing))
                if time.monotonic() >= deadline:
                    raise EnvWorkerError(f"environment worker {self.first_rank + rank} (pid {process.pid}) did not "
                                         f"answer {doing} within {self.timeout:.0f} s; it looks hung")
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
        message = f"environment worker {self.first_rank + rank} (pid {process.pid}) died during {doing} ({how})"
        if self.note_dir is not None:
            note = crash_note_path(self.note_dir, self.first_rank + rank)
            if note.is_file():
                message += f": {note.read_text().strip()}"
        return message

    def _send(self, rank: int, message: tuple[str, Any], doing: str) -> None:
        try:
            self.remotes[rank].send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError) as error:
            raise EnvWorkerError(self._death_message(rank, doing)) from error

    def step_async(self, actions) -> None:
        """Send each worker its action without waiting; `step_wait` collects the answers."""
        for rank, action in enumerate(actions):
            self._send(rank, ("step", action), "step")
            self._pending.add(rank)
        self.waiting = True

    def step_wait(self) -> VecEnvStepReturn:
        """Collect every worker's step, raising EnvWorkerError (with its crash note) if a worker died or hung."""
        results = [self._receive(rank, "step") for rank in range(len(self.remotes))]
        self.waiting = False
        obs, rews, dones, infos, self.reset_infos = zip(*results, strict=True)
        return _stack_obs(obs, self.observation_space), np.stack(rews), np.stack(dones), infos

    def reset(self) -> VecEnvObs:
        """Reset every env with the pending seeds and options, raising EnvWorkerError if a worker died or hung."""
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


class SplitVecEnv(VecEnv):
    """Env 0 steps in the learner's own process while envs 1.. step in `CheckedSubprocVecEnv` workers.

    With 2 envs on a 2-core machine, `SubprocVecEnv` runs 3 processes (learner + 2 workers) that wake each
    other on every vector step, and the learner idles while both workers step. Here the learner steps
    env 0 itself while the worker steps env 1: 2 processes for 2 cores, half the pipe round-trips. Env 0 is
    driven exactly as SB3's worker loop drives an env, and results are stacked as `SubprocVecEnv` stacks
    them, so rollouts are bit-identical to `SubprocVecEnv`'s (tests/test_train_vec.py).
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]], timeout: float = 300.0,
                 note_dir: str | Path | None = None, start_method: str | None = None, spare_worlds: int = 0) -> None:
        if len(env_fns) < 2:
            raise ValueError(f"SplitVecEnv needs at least 2 envs (1 local + workers), got {len(env_fns)}")
        self.local = _patch_env(env_fns[0]())
        try:
            self.remote = CheckedSubprocVecEnv(env_fns[1:], timeout=timeout, note_dir=note_dir,
                                               start_method=start_method, first_rank=1, spare_worlds=spare_worlds)
        except BaseException:
            self.local.close()
            raise
        self._local_action: Any = None
        super().__init__(len(env_fns), self.local.observation_space, self.local.action_space)

    def reset(self) -> VecEnvObs:
        """Reset env 0 here and envs 1.. in the workers, with the seeds and options set for each."""
        self.remote._seeds, self.remote._options = self._seeds[1:], self._options[1:]
        options = {"options": self._options[0]} if self._options[0] else {}
        local_obs, local_info = self.local.reset(seed=self._seeds[0], **options)
        remote_obs = self.remote.reset()
        self.reset_infos = [local_info, *self.remote.reset_infos]
        self._reset_seeds()
        self._reset_options()
        return _prepend(local_obs, remote_obs, self.observation_space)

    def step_async(self, actions: np.ndarray) -> None:
        """Start the workers on envs 1..; env 0 is stepped in `step_wait` while they work."""
        self.remote.step_async(actions[1:])  # the worker steps while the learner steps env 0 in step_wait
        self._local_action = actions[0]

    def step_wait(self) -> VecEnvStepReturn:
        """Step env 0 here as SB3's worker loop would, then collect the workers' steps and stack them in env order."""
        obs, reward, done, info, reset_info = vec_env_step(self.local, self._local_action)
        remote_obs, remote_rews, remote_dones, remote_infos = self.remote.step_wait()
        self.reset_infos = [reset_info, *self.remote.reset_infos]
        return (_prepend(obs, remote_obs, self.observation_space), np.concatenate([np.stack([reward]), remote_rews]),
                np.concatenate([np.stack([done]), remote_dones]), (info, *remote_infos))

    def close(self) -> None:
        """Close the workers, and the local env even if closing the workers fails."""
        try:
            self.remote.close()
        finally:
            self.local.close()

    def _split(self, indices: VecEnvIndices) -> tuple[bool, list[int]]:
        chosen = self._get_indices(indices)
        return 0 in chosen, [i - 1 for i in chosen if i > 0]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Read an attribute from the chosen envs (env 0 locally, the rest from the workers), in env order."""
        local, remote = self._split(indices)
        head = [self.local.get_wrapper_attr(attr_name)] if local else []
        return head + (self.remote.get_attr(attr_name, remote) if remote else [])

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute on the chosen envs (env 0 locally, the rest in the workers)."""
        local, remote = self._split(indices)
        if local:
            setattr(self.local, attr_name, value)
        if remote:
            self.remote.set_attr(attr_name, value, remote)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        """Call a method on the chosen envs (env 0 locally, the rest in the workers) and return results in env order."""
        local, remote = self._split(indices)
        head = [self.local.get_wrapper_attr(method_name)(*method_args, **method_kwargs)] if local else []
        tail = self.remote.env_method(method_name, *method_args, indices=remote, **method_kwargs) if remote else []
        return head + tail

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """Whether each chosen env is wrapped in `wrapper_class`, in env order."""
        from stable_baselines3.common.env_util import is_wrapped

        local, remote = self._split(indices)
        head = [is_wrapped(self.local, wrapper_class)] if local else []
        return head + (self.remote.env_is_wrapped(wrapper_class, remote) if remote else [])


def find_layer(venv: VecEnv | None, kind: type[VecEnv]) -> Any:
    """The layer of type `kind` in a stack of VecEnv wrappers (outermost first), or None."""
    while venv is not None:
        if isinstance(venv, kind):
            return venv
        venv = getattr(venv, "venv", None)
    return None


def vec_env_step(env: gym.Env, action: Any) -> tuple[Any, float, bool, dict[str, Any], dict[str, Any]]:
    """One step of one env exactly as SB3's worker loop does it.

    Done = terminated or truncated, the time-limit flag and terminal observation in `info`, and an automatic reset
    (obs, reward, done, info, reset info).
    """
    obs, reward, terminated, truncated, info = env.step(action)
    done = terminated or truncated
    info["TimeLimit.truncated"] = truncated and not terminated
    reset_info: dict[str, Any] = {}
    if done:
        info["terminal_observation"] = obs
        obs, reset_info = env.reset()
    return obs, reward, done, info, reset_info


def _prepend(first: Any, stacked: VecEnvObs, space: gym.spaces.Space) -> VecEnvObs:
    """Env 0's observation in front of the workers' stacked ones, as `SubprocVecEnv` would stack all."""
    if isinstance(space, gym.spaces.Dict):
        return {key: np.concatenate([np.stack([first[key]]), stacked[key]]) for key in space.spaces}
    return np.concatenate([np.stack([first]), stacked])


def default_start_method() -> str:
    """`forkserver` where available (safe with torch threads), else `spawn` (SB3's own choice)."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
