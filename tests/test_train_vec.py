"""Parallel env workers: a crash or a hang becomes an error naming the worker, never a hang."""

from __future__ import annotations

import os
import signal
import time

import gymnasium as gym
import numpy as np
import pytest

from experiments.training.vec import (
    CheckedSubprocVecEnv,
    CrashNoteWrapper,
    EnvWorkerError,
    SplitVecEnv,
    crash_note_path,
)


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


@pytest.mark.parametrize("kind", [CheckedSubprocVecEnv, SplitVecEnv])
def test_exception_in_a_worker_names_it_and_its_cause(tmp_path, kind) -> None:
    """Env 1 crashes; with `SplitVecEnv` env 0 steps in process, and the worker must still be called worker 1."""
    venv = kind(_factories(tmp_path, 1, "raise"), timeout=30, note_dir=tmp_path, start_method="fork")
    try:
        with pytest.raises(EnvWorkerError, match=r"environment worker 1 \(pid \d+\) died during step .*"
                                                 r"FloatingPointError: simulated physics blow-up"):
            _step_until_error(venv)
    finally:
        venv.close()
    processes = venv.remote.processes if kind is SplitVecEnv else venv.processes
    assert all(not p.is_alive() for p in processes)


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


def test_split_vec_env_gives_the_rollout_of_subproc_vec_env() -> None:
    """Same envs, seeds and actions: identical observations, rewards, dones and infos, resets included,
    whether or not the worker resets into worlds it built ahead while idle."""
    from experiments.training.config import TrainConfig
    from experiments.training.env import build_vec_env
    from experiments.training.language import EmbeddingTable, all_texts
    from perception.text import HashingTextEncoder

    table = EmbeddingTable.build(HashingTextEncoder(), all_texts("reach"), "hashing")
    actions = np.random.default_rng(0).uniform(-1, 1, size=(120, 2, 4)).astype(np.float32)
    records = {}
    for kind, spares in (("subproc", 0), ("split", 0), ("split", 3)):
        config = TrainConfig(task="reach", encoder="hashing", n_envs=2, vec_env=kind, spare_worlds=spares)
        venv = build_vec_env(config, table)
        try:
            venv.seed(7)
            steps = [venv.reset()]
            if spares:
                time.sleep(1.0)  # the worker is idle: it builds its spare worlds now
                assert venv.get_attr("spare_worlds", indices=[1]) == [spares]
            for action in actions:
                obs, rewards, dones, infos = venv.step(action)
                steps.append((obs, rewards, dones, [info.get("is_success") for info in infos]))
            records[kind, spares] = steps
            assert venv.get_attr("task_name") == venv.env_method("get_wrapper_attr", "task_name")
            used = venv.get_attr("resets_from_spare")
            assert used[0] == 0 and (used[1] >= 1 if spares else used[1] == 0), used
        finally:
            venv.close()
    assert any(step[2][1] for step in records["split", 3][1:]), "the worker's env should end an episode"
    for other in (("split", 0), ("split", 3)):
        for ours, theirs in zip(records[other], records["subproc", 0], strict=True):
            if isinstance(ours, dict):
                ours, theirs = (ours,), (theirs,)
            for a, b in zip(ours, theirs, strict=True):
                if isinstance(a, dict):
                    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
                else:
                    assert np.array_equal(np.asarray(a), np.asarray(b))
