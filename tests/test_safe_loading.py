"""Untrusted files run no code: each loader refuses a planted pickle payload with a clear error.

Every payload's `__reduce__` would create a marker file when unpickled. Each test asserts the loader's error
AND that the marker does not exist; `test_the_payload_is_live` proves the payload would have created it.
Also here: checkpoint round trips (RNG states, counters, reward normalisation), the fallback from a damaged
newest checkpoint, old pickled checkpoints, and `--resume` with nothing to resume.
"""

from __future__ import annotations

import io
import json
import pickle
import random
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from experiments import cli
from experiments.training.checkpoint import (
    PICKLED_FORMAT,
    OldCheckpointError,
    capture_rng,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    restore_rng,
    restore_vecnormalize,
    save_checkpoint,
)
from experiments.training.config import TrainConfig
from experiments.training.language import EmbeddingTable
from memory.continual import EWC, Demonstrations, Replay, Strategy
from perception.checkpoint import PickledObjectsError
from perception.checkpoint import load_checkpoint as load_perception_checkpoint


class Payload:
    """Unpickling this opens (creates) `marker`: proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_the_payload_is_live(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker))).close()
    assert marker.exists()


# --- embeddings.npz ------------------------------------------------------------------------------------------

def test_embedding_table_is_stored_as_plain_arrays(tmp_path: Path) -> None:
    table = EmbeddingTable(["pick up the red block", "öffne die Schublade"], np.eye(2, 3), "hashing")
    path = table.save(tmp_path / "e.npz")
    with np.load(path, allow_pickle=False) as data:
        assert data["texts"].dtype.kind == "U" and data["source"].dtype.kind == "U"
    loaded = EmbeddingTable.load(path)
    assert loaded.texts == table.texts and loaded.source == "hashing"
    np.testing.assert_array_equal(loaded.encode(table.texts), table.encode(table.texts))


def test_embedding_table_refuses_a_planted_payload(tmp_path: Path) -> None:
    marker, path = tmp_path / "ran", tmp_path / "embeddings.npz"
    np.savez(path, texts=np.array([Payload(marker), "x"], dtype=object), vectors=np.zeros((2, 3), np.float32),
             source=np.array("hashing"))
    with pytest.raises(ValueError, match=r"holds pickled objects.*older version"):
        EmbeddingTable.load(path)
    assert not marker.exists()


def test_embedding_table_refuses_wrong_array_kinds(tmp_path: Path) -> None:
    path = tmp_path / "e.npz"
    np.savez(path, texts=np.arange(2), vectors=np.zeros((2, 3), np.float32), source=np.array("hashing"))
    with pytest.raises(ValueError, match="not an embedding table: texts int"):
        EmbeddingTable.load(path)


# --- training checkpoints ------------------------------------------------------------------------------------

class _Model:
    """The part of an SB3 model a checkpoint reads: policy (+ optimizer), counters, observation space."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.policy = torch.nn.Linear(3, 2)
        self.policy.optimizer = torch.optim.Adam(self.policy.parameters(), lr=1e-3)
        self.policy(torch.ones(1, 3)).sum().backward()
        self.policy.optimizer.step()  # optimizer state with tensors and a step count
        self.num_timesteps, self._episode_num, self._n_updates, self._current_progress_remaining = 64, 3, 8, 0.5
        self.observation_space = gym.spaces.Dict({"goal": gym.spaces.Box(-1, 1, (3,))})


def _state() -> dict:
    return {"rng": capture_rng(), "ep_info_buffer": [{"r": np.float64(1.5), "l": 7, "t": 0.25}],
            "ep_success_buffer": [np.bool_(True), False], "history": [{"step": 64, "eval_success": 0.5,
                                                                         "rollout_reward": None}],
            "elapsed_s": 12.5, "bc": {"loss": 0.1}, "grounding": None}


def _vecnormalize():
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    venv = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]), norm_obs=False, norm_reward=True)
    venv.seed(0)
    venv.reset()
    for _ in range(20):
        venv.step(np.array([1]))
    return venv


def _save(directory: Path, step: int, vecnormalize=None) -> Path:
    model = _Model()
    model.num_timesteps = step
    return save_checkpoint(directory, step, TrainConfig(encoder="hashing"), model, vecnormalize, _state())


def test_checkpoint_round_trips_weights_counters_rng_and_buffers(tmp_path: Path) -> None:
    model = _Model()
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    np.random.standard_normal()  # a cached gaussian in numpy's legacy state
    state = _state()
    path = save_checkpoint(tmp_path, 64, TrainConfig(encoder="hashing"), model, None, state)
    expected = (random.random(), np.random.standard_normal(), torch.rand(1))
    loaded = load_checkpoint(path)
    assert loaded.step == 64 and loaded.counters == {"num_timesteps": 64, "_episode_num": 3, "_n_updates": 8,
                                                     "_current_progress_remaining": 0.5}
    model = _Model(seed=1)
    model.policy.load_state_dict(loaded.model_state["policy"])
    model.policy.optimizer.load_state_dict(loaded.model_state["optimizer"])
    for ours, theirs in zip(model.policy.state_dict().values(), _Model().policy.state_dict().values(), strict=True):
        assert torch.equal(ours, theirs)
    assert loaded.state["ep_info_buffer"] == [{"r": 1.5, "l": 7, "t": 0.25}]
    assert loaded.state["ep_success_buffer"] == [True, False] and loaded.state["history"] == state["history"]
    restore_rng(loaded.state["rng"])  # the next draws repeat those made right after the capture
    assert (random.random(), np.random.standard_normal()) == expected[:2] and torch.equal(torch.rand(1), expected[2])


def test_checkpoint_round_trips_reward_normalisation(tmp_path: Path) -> None:
    saved = _vecnormalize()
    path = _save(tmp_path, 64, saved)
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    fresh = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]), norm_obs=False, norm_reward=True)
    assert fresh.ret_rms.count != saved.ret_rms.count
    restore_vecnormalize(fresh, load_checkpoint(path).vecnormalize, path)
    np.testing.assert_array_equal(fresh.ret_rms.mean, saved.ret_rms.mean)
    np.testing.assert_array_equal(fresh.ret_rms.var, saved.ret_rms.var)
    assert fresh.ret_rms.count == saved.ret_rms.count
    with pytest.raises(ValueError, match="has reward-normalisation statistics but this run does not normalise"):
        restore_vecnormalize(None, load_checkpoint(path).vecnormalize, path)


def _rewrite(path: Path, **members: bytes) -> None:
    """Replace members of a checkpoint zip (what an attacker who can write the run folder does)."""
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    contents.update(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)


def test_checkpoint_refuses_a_planted_model_payload(tmp_path: Path) -> None:
    marker, path = tmp_path / "ran", _save(tmp_path / "checkpoints", 64)
    buffer = io.BytesIO()
    torch.save({"policy": {"weight": Payload(marker)}, "optimizer": {}}, buffer)
    _rewrite(path, **{"model.pt": buffer.getvalue()})
    with pytest.raises(ValueError, match=r"corrupt or foreign checkpoint .*step_0000000064.*pickled objects"):
        load_checkpoint(path)
    assert not marker.exists()


def test_checkpoint_refuses_a_planted_array_payload(tmp_path: Path) -> None:
    marker, path = tmp_path / "ran", _save(tmp_path / "checkpoints", 64)
    buffer = io.BytesIO()
    np.savez(buffer, **{"rng/numpy_keys": np.array([Payload(marker)], dtype=object)})
    _rewrite(path, **{"arrays.npz": buffer.getvalue()})
    with pytest.raises(ValueError, match=r"corrupt or foreign checkpoint .*allow_pickle"):
        load_checkpoint(path)
    assert not marker.exists()


def _old_checkpoint(directory: Path, step: int, marker: Path) -> Path:
    """A checkpoint of the first format: meta.json + model.zip + a pickled state.pkl (here: a payload)."""
    path = checkpoint_path(directory, step)
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.json", json.dumps({"format": PICKLED_FORMAT, "step": step}))
        archive.writestr("model.zip", b"")
        archive.writestr("state.pkl", pickle.dumps({"rng": Payload(marker)}))
    return path


def test_old_pickled_checkpoints_are_refused_as_from_an_older_version(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _save(tmp_path, 32)
    _old_checkpoint(tmp_path, 64, marker)
    with pytest.raises(OldCheckpointError, match="older version of embodia in a pickled format"):
        latest_checkpoint(tmp_path)  # never skipped over silently to the good one before it
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncate", "empty member"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path: Path, damage: str) -> None:
    _save(tmp_path, 32)
    newest = _save(tmp_path, 64)
    if damage == "truncate":
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    else:
        _rewrite(newest, **{"state.json": b""})
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.step == 32
    assert len(checkpoint.skipped) == 1 and "corrupt or foreign checkpoint" in checkpoint.skipped[0]
    assert "step_0000000064.ckpt" in checkpoint.skipped[0]
    assert latest_checkpoint(tmp_path / "none") is None


def test_every_checkpoint_damaged_is_an_error_naming_the_newest(tmp_path: Path) -> None:
    for step in (32, 64):
        checkpoint_path(tmp_path, step).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match=r"corrupt or foreign checkpoint .*step_0000000064"):
        latest_checkpoint(tmp_path)
    assert latest_checkpoint(tmp_path / "none") is None


def _run_folder(runs: Path, name: str = "run") -> Path:
    run = runs / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("task: reach\nencoder: hashing\nn_envs: 1\n")
    return run


def test_cli_resume_refuses_an_old_checkpoint_with_exit_2(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "ran"
    _old_checkpoint(_run_folder(tmp_path) / "checkpoints", 64, marker)
    assert cli.main(["train", "--resume", "--name", "run", "--runs-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "older version of embodia" in err and "step_0000000064.ckpt" in err
    assert not marker.exists()


def test_cli_resume_without_a_run_is_an_error(tmp_path: Path, capsys) -> None:
    assert cli.main(["train", "--resume", "--name", "nothing", "--runs-dir", str(tmp_path), "--quiet"]) == 2
    assert "no run named 'nothing'" in capsys.readouterr().err


def test_cli_resume_before_the_first_checkpoint_restarts_and_says_so(tmp_path: Path, capsys, monkeypatch) -> None:
    _run_folder(tmp_path)
    started = []

    def fake_train(config, paths, checkpoint, **kwargs):
        started.append(checkpoint)
        return {"steps": 0, "elapsed_s": 0.0, "steps_per_second": 0.0, "final_eval_success": 0.0,
                "final_eval_ci95": [0.0, 0.0]}

    monkeypatch.setattr("experiments.training.train.train", fake_train)
    assert cli.main(["train", "--resume", "--name", "run", "--runs-dir", str(tmp_path), "--quiet"]) == 0
    assert started == [None]
    assert "has no checkpoint to resume" in capsys.readouterr().err


# --- continual checkpoint.pt and strategies --------------------------------------------------------------------

def _continual_load(out: Path) -> None:
    from experiments.continual.sequence import ContinualRun

    run = object.__new__(ContinualRun)  # the file is refused before any of the run's parts are touched
    run.out = out
    run._load()


@pytest.mark.parametrize("planted", ["payload", "old strategy object"])
def test_continual_checkpoint_refuses_pickled_objects(tmp_path: Path, planted: str) -> None:
    marker = tmp_path / "ran"
    strategy = Payload(marker) if planted == "payload" else Replay(seed=3)
    torch.save({"policy": {}, "strategy": strategy}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"cannot resume from .*checkpoint.pt: .*holds pickled objects"):
        _continual_load(tmp_path)
    assert not marker.exists()


def _demos(task: str, rows: int) -> Demonstrations:
    rng = np.random.default_rng(rows)
    return Demonstrations(task, {"goal": rng.normal(size=(rows, 3)).astype(np.float32),
                                 "pixels": rng.integers(0, 255, (rows, 2, 2), dtype=np.uint8)},
                          rng.normal(size=(rows, 4)).astype(np.float32))


def _reloaded(strategy: Strategy, fresh: Strategy) -> Strategy:
    buffer = io.BytesIO()
    torch.save(strategy.state_dict(), buffer)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    return fresh


def test_replay_state_round_trips_and_keeps_sampling_the_same(tmp_path: Path) -> None:
    replay = Replay(seed=3, memories=[_demos("reach", 5), _demos("open", 7)])
    replay._rng.integers(10)  # the generator has moved on since it was seeded
    again = _reloaded(replay, Replay(seed=3))
    assert [m.task for m in again.memories] == ["reach", "open"]
    for ours, theirs in zip(replay.memories, again.memories, strict=True):
        np.testing.assert_array_equal(ours.actions, theirs.actions)
        assert ours.observations["pixels"].dtype == theirs.observations["pixels"].dtype == np.uint8
        np.testing.assert_array_equal(ours.observations["goal"], theirs.observations["goal"])
    np.testing.assert_array_equal(replay.memories[1].sample(replay._rng, 4)[1],
                                  again.memories[1].sample(again._rng, 4)[1])
    with pytest.raises(ValueError, match="saved strategy state is for 'replay', expected 'ewc'"):
        EWC().load_state_dict(replay.state_dict())


def test_ewc_state_round_trips() -> None:
    ewc = EWC(seed=1, anchors=[({"w": torch.rand(3)}, {"w": torch.rand(3)})])
    again = _reloaded(ewc, EWC(seed=1))
    assert torch.equal(again.anchors[0][0]["w"], ewc.anchors[0][0]["w"])
    assert torch.equal(again.anchors[0][1]["w"], ewc.anchors[0][1]["w"])
    assert again._rng.bit_generator.state == ewc._rng.bit_generator.state


# --- perception checkpoints ----------------------------------------------------------------------------------

def test_perception_checkpoint_refuses_a_planted_payload(tmp_path: Path) -> None:
    marker, path = tmp_path / "ran", tmp_path / "encoders.pt"
    torch.save({"format": "embodia.perception/1", "encoders": Payload(marker)}, path)
    with pytest.raises(PickledObjectsError, match=r"holds pickled objects \(GLOBAL [\w.]*open\)"):
        load_perception_checkpoint(path)
    assert not marker.exists()
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable torch file"):
        load_perception_checkpoint(path)



# --- perception frame sets -----------------------------------------------------------------------------------

def test_frame_set_refuses_a_planted_payload(tmp_path: Path) -> None:
    from perception.frames import FrameSet

    marker, path = tmp_path / "ran", tmp_path / "frames.npz"
    np.savez(path, episode=np.zeros(1), meta=np.array(json.dumps({"facts": [], "task": "reach"})),
             **{"obs__goal": np.array([Payload(marker)], dtype=object)})
    with pytest.raises(ValueError, match="holds pickled objects, not a frame set"):
        FrameSet.load(path)
    assert not marker.exists()
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable frame set"):
        FrameSet.load(path)


# --- a real run: damaged newest checkpoint, resume from the one before, same weights -----------------------

def test_resume_after_a_truncated_newest_checkpoint_matches_the_uninterrupted_run(tmp_path: Path, capsys) -> None:
    from experiments.training.checkpoint import list_checkpoints
    from experiments.training.config import load_config
    from experiments.training.train import open_run, train

    tiny = {"n_steps": 16, "batch_size": 16, "n_epochs": 2, "checkpoint_every": 32, "eval_every": 100000,
            "eval_episodes": 1, "net_arch": [16], "token_dim": 8, "keep_checkpoints": 10, "statistics_steps": 20,
            "bc_episodes": 2, "bc_epochs": 1, "grounding_steps": 5, "lr_schedule": "constant"}

    def fresh(name: str, total: int) -> None:
        config = load_config("reach", tiny, {"encoder": "hashing", "n_envs": 1, "total_steps": total})
        train(*open_run(name, tmp_path, False, config), progress=False)

    fresh("resumed", 64)
    newest = list_checkpoints(tmp_path / "resumed" / "checkpoints")[-1][1]
    assert newest.name == "step_0000000064.ckpt"
    newest.write_bytes(newest.read_bytes()[:1000])  # a copy cut short
    argv = ["train", "--resume", "--name", "resumed", "--runs-dir", str(tmp_path), "--steps", "128", "--quiet"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "resuming at step 32" in captured.out
    assert "warning: corrupt or foreign checkpoint" in captured.err and "step_0000000064.ckpt" in captured.err
    assert "falling back to the previous good checkpoint" in captured.err
    fresh("straight", 128)
    ours = load_checkpoint(list_checkpoints(tmp_path / "resumed" / "checkpoints")[-1][1])
    theirs = load_checkpoint(list_checkpoints(tmp_path / "straight" / "checkpoints")[-1][1])
    assert ours.step == theirs.step == 128
    for key, value in theirs.model_state["policy"].items():
        assert torch.equal(ours.model_state["policy"][key], value), f"{key} differs after the fallback resume"
