"""Training a language-conditioned skill policy with PPO: `embodia train` calls `open_run` then `train`.

A run lives in `runs/<name>/`: `config.yaml` (the merged config), `embeddings.npz` (the sentence
embeddings every worker uses), `tb/` (TensorBoard), `checkpoints/`, `metrics.json`, `policy.safetensors` +
`policy.json` (the final policy and its card), `plots/`, `videos/` and `report.md`.

Example:
    >>> config, paths, checkpoint = open_run("reach_demo", Path("runs"), False, load_config("reach"))  # doctest: +SKIP
    >>> summary = train(config, paths, checkpoint)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from agent.policy import FORMAT as CARD_FORMAT
from agent.policy_features import standardized_policy_kwargs
from agent.policy_io import architecture, save_policy
from experiments.common.errors import InputError
from experiments.common.io import atomic_write, atomic_write_text
from experiments.common.jsonio import write_json
from experiments.common.names import plain_name
from experiments.training.checkpoint import (
    COUNTERS,
    Checkpoint,
    check_compatible,
    latest_checkpoint,
    restore_vecnormalize,
)
from experiments.training.config import (
    TrainConfig,
    from_mapping,
    head_kwargs,
    learning_rate,
    neighbour_kwargs,
    policy_class,
    read_yaml,
    resolve_device,
    resume_config,
)
from experiments.training.env import build_vec_env, find_vec_normalize, input_statistics, make_env
from experiments.training.language import EmbeddingTable, all_texts
from experiments.training.policy_eval import eval_skill_text_fraction
from experiments.training.report import plot_learning_curves, write_report
from experiments.training.session import (
    BoundaryCallback,
    ProgressCallback,
    RunPaths,
    SessionState,
    TrainingSession,
    UpdateThreadsCallback,
)
from perception.text import TextEncoder, default_text_encoder

logger = logging.getLogger(__name__)
SKILL_OF_TASK = {"place_in": "place", "place_on": "place"}


def open_run(name: str, runs_dir: Path, resume: bool, config: TrainConfig | None,
             requested: dict[str, Any] | None = None) -> tuple[TrainConfig, RunPaths, Checkpoint | None]:
    """Check the run folder before anything is built or written.

    A fresh run needs a new folder; `resume` needs an existing one and returns its newest checkpoint
    (None if it was killed before the first), refusing a damaged or incompatible one.
    """
    paths = RunPaths(runs_dir / plain_name(name))
    if not resume:
        if paths.config.exists() or paths.checkpoints.exists():
            raise InputError(f"run folder {paths.root} already exists; pass --resume to continue it "
                             f"or choose another --name")
        assert config is not None, "a fresh run needs a config"
        return config, paths, None
    if not paths.config.is_file():
        known = sorted(p.name for p in runs_dir.iterdir() if (p / "config.yaml").is_file()) \
            if runs_dir.is_dir() else []
        raise FileNotFoundError(f"no run named {name!r} in {runs_dir} to resume; runs there: "
                                f"{', '.join(known) or 'none'}")
    stored = from_mapping(read_yaml(paths.config))
    config = resume_config(stored, requested or {})
    checkpoint = latest_checkpoint(paths.checkpoints)
    if checkpoint is not None:
        check_compatible(checkpoint, config)
    return config, paths, checkpoint


def embedding_table(config: TrainConfig, paths: RunPaths, encoder: TextEncoder | None = None) -> EmbeddingTable:
    """The run's sentence embeddings: read back when resuming (bit-identical goals), else computed once."""
    if paths.embeddings.is_file():
        return EmbeddingTable.load(paths.embeddings)
    encoder = encoder or default_text_encoder(config.encoder)
    table = EmbeddingTable.build(encoder, all_texts(config.task), source=config.encoder)
    table.save(paths.embeddings)
    return table


def new_model(config: TrainConfig, venv: Any, paths: RunPaths | None, table: EmbeddingTable,
              statistics: dict[str, Any] | None = None) -> Any:
    """A fresh PPO model whose extractor standardises its inputs with this task's statistics.

    `paths` gives the TensorBoard folder; None logs nothing (continual runs keep their own records).
    """
    model = _ppo(config, venv, paths)
    model.policy.features_extractor.set_statistics(statistics or input_statistics(config, table))
    return model


def _ppo(config: TrainConfig, venv: Any, paths: RunPaths | None) -> Any:
    """The PPO model the config describes, with freshly initialised weights.

    Encoders named in `config.pretrained_encoders`' checkpoint start from its weights (and stay fixed with
    `freeze_encoders`); a resume then loads its own checkpoint over them.
    """
    from experiments.training.actors import ActorPPO

    encoders: dict[str, Any] = {}
    if config.pretrained_encoders:
        encoders = {"pretrained": config.pretrained_encoders, "freeze_pretrained": config.freeze_encoders}
    kwargs = standardized_policy_kwargs(token_dim=config.token_dim, fusion=config.fusion,
                                        cnn_width=config.cnn_width, object_heads=config.object_heads,
                                        **neighbour_kwargs(config), **encoders)
    kwargs.update(net_arch={"pi": list(config.net_arch), "vf": list(config.net_arch)},
                  log_std_init=config.log_std_init, **head_kwargs(config))
    model = ActorPPO(policy_class(config), venv, learning_rate=learning_rate(config), n_steps=config.n_steps,
                    batch_size=config.batch_size, n_epochs=config.n_epochs, gamma=config.gamma,
                    gae_lambda=config.gae_lambda, clip_range=config.clip_range, ent_coef=config.ent_coef,
                    vf_coef=config.vf_coef, max_grad_norm=config.max_grad_norm, target_kl=config.target_kl,
                    policy_kwargs=kwargs, tensorboard_log=str(paths.tb) if paths else None, seed=config.seed,
                    device=resolve_device(config.device), verbose=0)
    model.policy.features_extractor.reload_pretrained()  # SB3's orthogonal init overwrote them
    return model


def loaded_model(checkpoint: Checkpoint, config: TrainConfig, venv: Any, paths: RunPaths) -> Any:
    """The config's PPO model with the checkpoint's weights, optimizer state and counters put back.

    The model is built from the run's config, never from the file, so a checkpoint carries data only;
    the input statistics are buffers of the policy and come back with its weights.
    """
    model = _ppo(config, venv, paths)
    try:
        model.policy.load_state_dict(checkpoint.model_state["policy"])
        model.policy.optimizer.load_state_dict(checkpoint.model_state["optimizer"])
    except (ValueError, KeyError, RuntimeError) as error:
        raise InputError(f"checkpoint {checkpoint.path} does not fit this run's model: {error}") from error
    for name in COUNTERS:
        setattr(model, name, type(getattr(model, name))(checkpoint.counters[name]))
    return model


def _check_tensorboard() -> None:
    if importlib.util.find_spec("tensorboard") is None:
        raise InputError("TensorBoard logging needs the 'tensorboard' package (a project dependency): "
                         "pip install tensorboard")


def _prepare_folder(config: TrainConfig, paths: RunPaths, command: str) -> None:
    """Create the folder and config on a fresh start; record every command (first line: the original)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    if not paths.config.exists():
        atomic_write_text(paths.config, config.to_yaml())
    commands = paths.commands.read_text() if paths.commands.is_file() else ""
    atomic_write_text(paths.commands, commands + command + "\n")


def run_commands(paths: RunPaths) -> list[str]:
    """The commands that produced the run: the original, then each --resume."""
    return paths.commands.read_text().splitlines() if paths.commands.is_file() else []


def train(config: TrainConfig, paths: RunPaths, checkpoint: Checkpoint | None = None,
          encoder: TextEncoder | None = None, progress: bool = True, command: str = "") -> dict[str, Any]:
    """Train (or resume) the run to `config.total_steps`; returns the summary written to metrics.json."""
    _check_tensorboard()
    torch.set_num_threads(config.torch_threads)
    _prepare_folder(config, paths, command)
    table = embedding_table(config, paths, encoder)
    venv = build_vec_env(config, table, note_dir=paths.workers)
    eval_env = None
    try:
        state = _session_state(checkpoint)
        if checkpoint is None:
            started = time.perf_counter()
            statistics = input_statistics(config, table)
            model = new_model(config, venv, paths, table, statistics)
            _warm_start(model, config, table, statistics, state)
            state.elapsed_s = time.perf_counter() - started  # warm starts count towards the training time
        else:
            restore_vecnormalize(find_vec_normalize(venv), checkpoint.vecnormalize, checkpoint.path)
            model = loaded_model(checkpoint, config, venv, paths)
        eval_env = make_env(config, table, skill_text_fraction=eval_skill_text_fraction(config.task))
        resume = (checkpoint.step, checkpoint.state) if checkpoint else None
        session = TrainingSession(config, paths, model, eval_env, state, resume)
        total = config.rounded(config.total_steps)
        remaining = total - int(model.num_timesteps)
        if remaining > 0:
            callbacks = [BoundaryCallback(session), ProgressCallback(session, total, enabled=progress)]
            if config.update_threads != config.torch_threads:
                callbacks.append(UpdateThreadsCallback(config.torch_threads, config.update_threads))
            model.learn(remaining, callback=callbacks, reset_num_timesteps=checkpoint is None, tb_log_name="ppo")
        session.finish()
        return _finalise(config, paths, model, session, command, table.dim)
    finally:
        venv.close()
        if eval_env is not None:
            eval_env.close()


def _session_state(checkpoint: Checkpoint | None) -> SessionState:
    if checkpoint is None:
        return SessionState()
    saved = checkpoint.state
    return SessionState(history=list(saved["history"]), elapsed_s=float(saved["elapsed_s"]), bc=saved.get("bc"),
                        grounding=saved.get("grounding"))


def _warm_start(model: Any, config: TrainConfig, table: EmbeddingTable, statistics: dict[str, Any],
                state: SessionState) -> None:
    """Optional pretraining before PPO: grounding (sentence → object attention), then behaviour cloning."""
    if config.grounding_steps > 0 and model.policy.features_extractor.object_attention is None:
        # Pixel modes have no per-object rows to attend to; the task's config still asks for grounding.
        logger.info("grounding skipped: %s observations have no object rows", config.obs_mode)
        state.grounding = {"skipped": f"no object attention in {config.obs_mode} observations"}
    elif config.grounding_steps > 0:
        from experiments.training.grounding import pretrain_grounding

        state.grounding = pretrain_grounding(model, config, table, statistics["objects"], config.grounding_steps)
    if config.bc_warmstart:
        from experiments.training.bc import collect_expert_data, pretrain

        state.bc = pretrain(model, collect_expert_data(config, table, config.bc_episodes), config)


def _finalise(config: TrainConfig, paths: RunPaths, model: Any, session: TrainingSession, command: str,
              goal_dim: int) -> dict[str, Any]:
    """Write the policy, its card, the curve, metrics and report; return the summary."""
    atomic_write(paths.policy, lambda tmp: save_policy(model.policy, tmp))
    last = session.state.history[-1]
    summary = {"final_eval_success": last["eval_success"], "final_eval_ci95": last["eval_ci95"],
               "steps_per_second": round(int(model.num_timesteps) / max(session.elapsed_s, 1e-9), 1)}
    session.write_metrics(summary)
    card = {"format": CARD_FORMAT, "task": config.task, "skill": SKILL_OF_TASK.get(config.task, config.task),
            "file": paths.policy.name, "architecture": architecture(model.policy),
            "obs_mode": config.obs_mode, "encoder": config.encoder, "goal_dim": goal_dim,
            "train_command": (run_commands(paths) or [command])[0], "resumed_with": run_commands(paths)[1:],
            "run": paths.root.name, "seed": config.seed,
            "bc_warmstart": config.bc_warmstart, "train_steps": int(model.num_timesteps),
            "train_minutes": round(session.elapsed_s / 60, 2),
            "eval": {"source": "training evaluation", "episodes": last["eval_episodes"],
                     "rate": last["eval_success"], "ci95": last["eval_ci95"]}}
    write_json(paths.card, card, indent=1)
    refresh_outputs(paths)
    return json.loads(paths.metrics.read_text())


def refresh_outputs(paths: RunPaths) -> None:
    """Re-draw the learning curve and re-write report.md from what the run folder holds now."""
    config = read_yaml(paths.config)
    metrics = json.loads(paths.metrics.read_text()) if paths.metrics.is_file() else {}
    history = metrics.get("history", [])
    if history:
        title = f"{config['task']} ({config['obs_mode']}, seed {config['seed']})"
        plot_learning_curves([(paths.root.name, history)], paths.plots / "learning_curve.png", title)
    evaluation = json.loads(paths.eval.read_text()) if paths.eval.is_file() else None
    write_report(paths.report, paths.root.name, config, metrics, evaluation, " ; ".join(run_commands(paths)))
