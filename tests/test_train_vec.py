"""Parallel env workers: a crash or a hang becomes an error naming the worker, never a hang."""

from __future__ import annotations

import os
import signal
import time

import gymnasium as gym
import numpy as np
import pytest

from experiments.training_vec import CheckedSubprocVecEnv, CrashNoteWrapper, EnvWorkerError, crash_note_path


def _factories(note_dir, faulty_rank: int, fault: str):
    """CartPole workers; worker `faulty_rank` raises on its 3rd step or sleeps forever, by `fault`."""

    def make(rank: int):
        def build() -> gym.Env:
            env = gym.make("CartPole-v1")
            if rank == faulty_rank:
                calls = {"n": 0}

                def observe(obs):
                    calls["n"] += 1
                    if calls["n"] >= 3 and fault == "raise":
                        raise FloatingPointError("simulated physics blow-up")
                    if calls["n"] >= 3 and fault == "hang":
                        time.sleep(3600)
                    return obs

                env = gym.wrappers.TransformObservation(env, observe, env.observation_space)
            return CrashNoteWrapper(env, crash_note_path(note_dir, rank))

        return build

    return [make(rank) for rank in range(2)]


def _step_until_error(venv, steps: int = 10) -> None:
    venv.reset()
    for _ in range(steps):
        venv.step(np.zeros(venv.num_envs, dtype=np.int64))


def test_exception_in_a_worker_names_it_and_its_cause(tmp_path) -> None:
    venv = CheckedSubprocVecEnv(_factories(tmp_path, 1, "raise"), timeout=30, note_dir=tmp_path, start_method="fork")
    try:
        with pytest.raises(EnvWorkerError, match=r"environment worker 1 \(pid \d+\) died during step .*"
                                                 r"FloatingPointError: simulated physics blow-up"):
            _step_until_error(venv)
    finally:
        venv.close()
    assert all(not p.is_alive() for p in venv.processes)


def test_killed_worker_is_reported_with_the_signal(tmp_path) -> None:
    venv = CheckedSubprocVecEnv(_factories(tmp_path, -1, "none"), timeout=30, note_dir=tmp_path, start_method="fork")
    try:
        venv.reset()
        os.kill(venv.processes[0].pid, signal.SIGKILL)
        venv.processes[0].join(timeout=10)
        with pytest.raises(EnvWorkerError, match=r"environment worker 0 \(pid \d+\) died during step "
                                                 r"\(killed by signal 9\)"):
            venv.step(np.zeros(2, dtype=np.int64))
    finally:
        venv.close()


def test_hung_worker_times_out_with_its_name(tmp_path) -> None:
    venv = CheckedSubprocVecEnv(_factories(tmp_path, 0, "hang"), timeout=1.5, note_dir=tmp_path, start_method="fork")
    started = time.perf_counter()
    try:
        with pytest.raises(EnvWorkerError, match=r"environment worker 0 .* did not answer step within 2 s"):
            _step_until_error(venv)
    finally:
        venv.close()
    assert time.perf_counter() - started < 30
    assert all(not p.is_alive() for p in venv.processes)


def test_healthy_workers_step_like_sb3(tmp_path) -> None:
    venv = CheckedSubprocVecEnv(_factories(tmp_path, -1, "none"), note_dir=tmp_path, start_method="fork")
    try:
        venv.seed(7)
        obs = venv.reset()
        assert obs.shape == (2, 4)
        obs, rewards, _dones, infos = venv.step(np.ones(2, dtype=np.int64))
        assert rewards.tolist() == [1.0, 1.0] and len(infos) == 2
    finally:
        venv.close()
