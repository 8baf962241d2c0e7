"""`embodia continual` end to end on a tiny budget: phases, evaluations, strategy memory, resume, bad input."""

from __future__ import annotations

from dataclasses import replace

import pytest

from experiments import cli
from experiments.continual.sequence import ContinualConfig, ContinualRun, curves_of, task_configs
from perception.text import HashingTextEncoder

SMALL = ("n_steps=128", "batch_size=64", "n_epochs=2", "statistics_steps=20", "bc_epochs=2",
         "grounding_steps=5", "net_arch=[16]", "token_dim=8")


def _config(**changes) -> ContinualConfig:
    base = ContinualConfig(tasks=("reach", "open"), strategy="replay", steps_per_task=256, eval_every=128,
                           eval_episodes=1, bc_episodes=2, encoder="hashing", settings=SMALL)
    return replace(base, **changes)


def _run(config: ContinualConfig, out):
    run = ContinualRun(config, HashingTextEncoder(), out)
    try:
        return run.run(), run
    finally:
        run.close()


def test_task_configs_follow_each_task_file_with_one_model_shape() -> None:
    configs = task_configs(ContinualConfig(tasks=("reach", "open")))
    assert configs["reach"].grounding_steps > 0 and configs["open"].grounding_steps == 0  # from the YAML files
    assert configs["reach"].net_arch == configs["open"].net_arch
    assert {c.total_steps for c in configs.values()} == {ContinualConfig().steps_per_task}


def test_run_trains_every_phase_keeps_memories_and_resumes_without_retraining(tmp_path, monkeypatch) -> None:
    config = _config()
    state, run = _run(config, tmp_path)
    curves = curves_of(state)
    assert state.phases_done == 2 and len(state.phase_minutes) == 2
    for curve in curves.values():
        assert curve.steps == (0, 128, 256, 384, 512)
        assert all(0.0 <= p <= 1.0 for p in curve.success)
    assert [m.task for m in run.strategy.memories] == ["reach", "open"]
    assert (tmp_path / "checkpoint.pt").is_file()

    def no_training(self, phase):
        raise AssertionError("a finished run must not train again")

    monkeypatch.setattr(ContinualRun, "_train_phase", no_training)
    resumed, again = _run(config, tmp_path)
    assert resumed.evaluations == state.evaluations
    assert [m.task for m in again.strategy.memories] == ["reach", "open"]


def test_resume_refuses_another_configuration_and_a_corrupt_checkpoint(tmp_path, monkeypatch) -> None:
    config = _config(tasks=("reach", "open"), strategy="naive", steps_per_task=128)
    monkeypatch.setattr(ContinualRun, "_train_phase", lambda self, phase: _tiny_demos(self, phase))
    _run(config, tmp_path)
    with pytest.raises(ValueError, match="different configuration"):
        _run(replace(config, seed=1), tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot resume from"):
        _run(config, tmp_path)
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"not a checkpoint"


def _tiny_demos(run: ContinualRun, phase: int):
    import numpy as np

    from memory.continual import Demonstrations

    obs, _ = next(iter(run.eval_envs.values())).reset(seed=0)
    return Demonstrations(run.config.tasks[phase], {k: v[None] for k, v in obs.items()}, np.zeros((1, 4), np.float32))


def test_cli_rejects_unknown_tasks_and_settings_before_any_work(tmp_path, capsys) -> None:
    code = cli.main(["continual", "--tasks", "reach,fly", "--out", str(tmp_path / "a")])
    assert code != 0 and "--tasks needs at least two of" in capsys.readouterr().err
    code = cli.main(["continual", "--tasks", "reach,open", "--set", "no_such_key=1", "--encoder", "hashing",
                     "--steps-per-task", "128", "--eval-every", "128", "--out", str(tmp_path / "b")])
    error = capsys.readouterr().err
    assert code != 0 and "unknown config keys ['no_such_key']" in error
    assert not (tmp_path / "b").exists()


def test_a_strategy_weight_matters_only_to_its_own_strategy(tmp_path, monkeypatch) -> None:
    """References (naive) are shared across EWC weights; an EWC run with another weight is refused."""
    monkeypatch.setattr(ContinualRun, "_train_phase", lambda self, phase: _tiny_demos(self, phase))
    naive = _config(strategy="naive", steps_per_task=128)
    _run(naive, tmp_path / "naive")
    _run(replace(naive, ewc_weight=1.0, replay_weight=5.0), tmp_path / "naive")  # same run: resumes
    ewc = replace(naive, strategy="ewc")
    _run(ewc, tmp_path / "ewc")
    _run(replace(ewc, replay_weight=5.0), tmp_path / "ewc")
    with pytest.raises(ValueError, match="different configuration"):
        _run(replace(ewc, ewc_weight=1.0), tmp_path / "ewc")


def test_resume_refuses_a_run_whose_task_config_files_changed(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ContinualRun, "_train_phase", lambda self, phase: _tiny_demos(self, phase))
    config = _config(strategy="naive", steps_per_task=128)
    _run(config, tmp_path)
    original = task_configs

    def edited(config):
        configs = original(config)
        configs["open"] = replace(configs["open"], bc_log_std=-3.0)
        return configs

    monkeypatch.setattr("experiments.continual.sequence.task_configs", edited)
    with pytest.raises(ValueError, match="config files of open changed"):
        _run(config, tmp_path)


@pytest.mark.slow
def test_replay_keeps_reach_while_naive_forgets_it_on_the_real_recipe(tmp_path) -> None:
    """reach then open, the real task recipes on a small budget: replay must keep reach, naive must lose it."""
    from memory.continual_metrics import forgetting
    from perception.text import default_text_encoder

    encoder = default_text_encoder("minilm")
    lost = {}
    for strategy in ("naive", "replay"):
        config = ContinualConfig(tasks=("reach", "open"), strategy=strategy, steps_per_task=4096, eval_every=2048,
                                 eval_episodes=10)
        run = ContinualRun(config, encoder, tmp_path / strategy)
        try:
            state = run.run()
        finally:
            run.close()
        curves = curves_of(state)
        assert curves["reach"].at(4096) >= 0.7, f"{strategy}: reach should be learned first: {curves['reach']}"
        lost[strategy] = forgetting(curves, config.tasks, config.steps_per_task)["reach"]
    assert lost["naive"] >= 0.5 and lost["replay"] <= 0.5 * lost["naive"], lost
