"""Training configs: per-task YAML files, overrides, validation and resume rules."""

from __future__ import annotations

import pytest

from envs.tasks import TASK_NAMES
from experiments.training.config import (
    CONFIG_DIR,
    TrainConfig,
    config_path,
    from_mapping,
    load_config,
    parse_assignments,
    resume_config,
)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_every_task_has_a_loadable_config_for_itself(task: str) -> None:
    config = load_config(task)
    assert config.task == task
    assert (CONFIG_DIR / f"{task}.yaml").is_file()


def test_precedence_defaults_file_set_flags() -> None:
    base = load_config("reach")
    assert base.eval_episodes != TrainConfig().eval_episodes or base.total_steps != TrainConfig().total_steps
    config = load_config("reach", parse_assignments(["learning_rate=1e-4", "net_arch=[32, 16]", "n_envs=3"]),
                         {"n_envs": 1, "seed": None})
    assert config.learning_rate == pytest.approx(1e-4)
    assert config.net_arch == (32, 16)
    assert config.n_envs == 1  # the explicit flag beats --set
    assert config.seed == base.seed  # None flags are ignored


def test_unknown_key_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown config keys \['learnig_rate'\]; valid keys: .*learning_rate"):
        from_mapping({"learnig_rate": 1e-3})


@pytest.mark.parametrize(("values", "message"), [
    ({"n_envs": 0}, "n_envs must be a positive integer"),
    ({"obs_mode": "pixels"}, "obs_mode must be one of state, rgbd, rgbd_touch"),
    ({"learning_rate": "fast"}, "learning_rate must be a float"),
    ({"net_arch": [64, -1]}, "net_arch must be a list of positive integers"),
    ({"bc_warmstart": "yes"}, "bc_warmstart must be true or false"),
    ({"skill_text_fraction": 1.5}, r"skill_text_fraction must be in \[0, 1\]"),
])
def test_bad_values_are_refused_with_the_reason(values, message) -> None:
    with pytest.raises(ValueError, match=message):
        from_mapping(values)


def test_assignment_syntax_errors() -> None:
    with pytest.raises(ValueError, match="--set expects KEY=VALUE"):
        parse_assignments(["learning_rate"])
    assert parse_assignments(["target_kl=null", "fusion=attention"]) == {"target_kl": None, "fusion": "attention"}


def test_unknown_config_name_lists_available() -> None:
    with pytest.raises(FileNotFoundError, match=r"no config named .fly.; available: .*reach"):
        config_path("fly")


def test_rollout_rounding() -> None:
    config = TrainConfig(n_envs=2, n_steps=100)
    assert config.rollout_size == 200
    assert config.rounded(1) == 200 and config.rounded(200) == 200 and config.rounded(201) == 400


def test_resume_may_only_extend_training() -> None:
    stored = TrainConfig(total_steps=1000, seed=3)
    assert resume_config(stored, {"total_steps": 5000, "seed": 3, "task": None}).total_steps == 5000
    with pytest.raises(ValueError, match=r"cannot change seed: 3 -> 4"):
        resume_config(stored, {"seed": 4})


def test_yaml_round_trip() -> None:
    import yaml

    config = TrainConfig(net_arch=(64, 32), target_kl=0.05)
    assert from_mapping(yaml.safe_load(config.to_yaml())) == config


def test_linear_learning_rate_schedule_decays_to_zero_and_pickles() -> None:
    import pickle

    from experiments.training.config import TrainConfig, learning_rate

    assert learning_rate(TrainConfig(learning_rate=1e-3)) == 1e-3
    schedule = learning_rate(TrainConfig(learning_rate=1e-3, lr_schedule="linear"))
    assert schedule(1.0) == pytest.approx(1e-3) and schedule(0.25) == pytest.approx(2.5e-4) and schedule(0.0) == 0.0
    assert pickle.loads(pickle.dumps(schedule))(0.5) == pytest.approx(5e-4)
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, linear"):
        TrainConfig(lr_schedule="cosine")
