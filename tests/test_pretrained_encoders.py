"""Training can start a pixel policy's encoders from `embodia pretrain-perception`'s checkpoint (issue 14).

Before, `TrainConfig` had no way to pass a checkpoint to `MultiModalExtractor`, so the pretrained encoders
could not be used where they matter: in PPO and DAgger students on `rgbd_touch`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from experiments.common.errors import InputError
from experiments.training.config import TrainConfig


def _pretrain_checkpoint(tmp_path: Path, space, names: tuple[str, ...]) -> Path:
    from perception.checkpoint import save_checkpoint
    from perception.extractor import MultiModalExtractor

    torch.manual_seed(123)
    source = MultiModalExtractor(space, token_dim=16, cnn_width=8)
    encoders = {name: source.encoders[name].state_dict() for name in names}
    return save_checkpoint(tmp_path / "perception.pt", {"encoders": encoders})


def test_config_refuses_encoders_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="has none"):
        TrainConfig(obs_mode="state", pretrained_encoders=str(tmp_path / "p.pt"))
    with pytest.raises(InputError, match="no checkpoint file"):
        TrainConfig(obs_mode="rgbd_touch", pretrained_encoders=str(tmp_path / "missing.pt"))
    with pytest.raises(InputError, match="freeze_encoders needs"):
        TrainConfig(obs_mode="rgbd_touch", freeze_encoders=True)


def test_new_model_starts_from_the_checkpoint_and_frozen_encoders_stay_fixed(tmp_path: Path) -> None:
    from experiments.training.env import build_vec_env, input_statistics
    from experiments.training.language import EmbeddingTable, all_texts
    from experiments.training.train import new_model
    from perception.text import HashingTextEncoder

    base = {"task": "reach", "obs_mode": "rgbd_touch", "image_size": 16, "encoder": "hashing", "n_envs": 1,
            "n_steps": 32, "batch_size": 32, "n_epochs": 1, "token_dim": 16, "cnn_width": 8, "net_arch": (16,),
            "statistics_steps": 20, "object_heads": 0}
    table = EmbeddingTable.build(HashingTextEncoder(), all_texts("reach"), "hashing")
    venv = build_vec_env(TrainConfig(**base), table)
    try:
        path = _pretrain_checkpoint(tmp_path, venv.observation_space, ("camera_front", "touch"))
        saved = torch.load(path, weights_only=True)["encoders"]
        config = TrainConfig(**base, pretrained_encoders=str(path), freeze_encoders=True)
        statistics = input_statistics(config, table)
        model = new_model(config, venv, None, table, statistics)
        extractor = model.policy.features_extractor
        assert extractor.pretrained_loaded == ["camera_front", "touch"]
        for name in ("camera_front", "touch"):
            for key, value in extractor.encoders[name].state_dict().items():
                assert torch.equal(value.cpu(), saved[name][key]), f"{name}.{key} not loaded"
        frozen = {k: v.clone() for k, v in extractor.encoders["camera_front"].state_dict().items()}
        wrist = {k: v.clone() for k, v in extractor.encoders["camera_wrist"].state_dict().items()}
        model.learn(total_timesteps=32)
        after = extractor.encoders["camera_front"].state_dict()
        assert all(torch.equal(frozen[k], after[k]) for k in frozen), "a frozen encoder changed in training"
        moved = extractor.encoders["camera_wrist"].state_dict()
        assert any(not torch.equal(wrist[k], moved[k]) for k in wrist), "the fresh encoder did not train"

        from agent.policy_io import load_policy, save_policy

        save_policy(model.policy, tmp_path / "policy.safetensors")
        path.unlink()  # a shipped policy must load where the pretraining checkpoint is not
        loaded = load_policy(tmp_path / "policy.safetensors")
        for key, value in model.policy.state_dict().items():
            assert torch.equal(value.cpu(), loaded.state_dict()[key]), key

        plain = new_model(TrainConfig(**base), venv, None, table, statistics)
        assert plain.policy.features_extractor.pretrained_loaded == []
    finally:
        venv.close()


def test_dagger_students_take_the_checkpoint_but_not_with_an_init(tmp_path: Path) -> None:
    from experiments.imitation.dagger import DaggerConfig

    path = tmp_path / "perception.pt"
    path.write_bytes(b"")
    config = DaggerConfig(task="pick", obs_mode="rgbd_touch", pretrained_encoders=str(path), encoder="hashing")
    assert config.train_config().pretrained_encoders == str(path)
    with pytest.raises(InputError, match="choose one"):
        DaggerConfig(task="pick", obs_mode="rgbd_touch", pretrained_encoders=str(path), init="card.json")
