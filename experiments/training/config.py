"""Training hyper-parameters: one flat, frozen record per run, loaded from `experiments/configs/<name>.yaml`.

Precedence (later wins): the defaults below, the task's YAML file, `--set KEY=VALUE` pairs, then the named
command-line flags (`--n-envs`, `--steps`, ...). The merged record is written to the run folder as
`config.yaml`, which is what `--resume` and `embodia eval` read back, so a run always knows exactly how it
was trained.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envs.observation import OBS_MODES
from experiments.common.errors import InputError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
ENCODERS = ("minilm", "hashing")
FUSIONS = ("concat", "attention")
LR_SCHEDULES = ("constant", "linear")
BC_LR_SCHEDULES = ("constant", "cosine")
VEC_ENVS = ("subproc", "split", "actors")
MAX_SEED = 2**32 - 1
MAX_ROLLOUT_BUFFER_BYTES = 16 * 2**30
"""Refuse configs whose PPO rollout buffer alone would need more than this (checked before anything is built)."""
STATE_FLOATS_PER_STEP = 1024
"""Upper estimate of one step's state-mode observation (proprio, objects, touch, goal) in floats."""
SIZE_LIMITS = {"n_envs": 256, "image_size": 512, "token_dim": 4096, "cnn_width": 1024, "object_heads": 64,
               "statistics_steps": 1_000_000, "eval_episodes": 100_000, "bc_episodes": 100_000,
               "bc_batch_size": 1_000_000, "batch_size": 10_000_000, "torch_threads": 1024, "update_threads": 1024,
               "total_steps": 10**12}
"""Upper bounds of sizes: past them a typo (an extra zero) would exhaust memory or run for years."""
RESUME_MUTABLE = ("total_steps",)
"""The only fields a `--resume` may change (training longer); anything else would break exact resumption."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run does."""

    task: str = "reach"
    """Env task (`envs.tasks.TASK_NAMES`); one policy covers every argument tuple of it."""
    obs_mode: str = "state"
    """Observation mode of the env: state, rgbd or rgbd_touch."""
    n_envs: int = 2
    """Parallel environments; more than one runs each in its own process (SubprocVecEnv)."""
    vec_env: str = "split"
    """With n_envs > 1: split (env 0 in the learner's process, the rest in workers: one process fewer, and
    faster on a small machine) or subproc (every env in a worker process), whose rollouts are identical;
    or actors (every env in a worker that acts with its own copy of the rollout's policy and runs ahead of
    the learner: fastest, reproducible, though its action noise differs from the other two; state mode
    only; see experiments/training/actors.py)."""
    total_steps: int = 200_000
    """Environment steps to train for (rounded up to whole rollouts)."""
    seed: int = 0
    """Seeds torch, numpy, the envs and the instruction sampler."""
    encoder: str = "minilm"
    """Text encoder for the instruction embedding: minilm (real) or hashing (fast, tests only)."""
    start: str = "reset"
    """Episode starts: reset (the env's plain reset) or chain (where a random scripted sub-chain ends;
    envs/chain_starts.py)."""
    device: str = "auto"
    """Torch device for the learner: auto (CUDA when present, else CPU, as SB3 does), cpu or cuda[:N]."""

    learning_rate: float = 3e-4
    lr_schedule: str = "constant"
    """constant, or linear: decays to 0 at `total_steps`, so late updates cannot undo what was learned."""
    n_steps: int = 512
    """Steps per env per rollout."""
    batch_size: int = 256
    n_epochs: int = 10
    gamma: float = 0.98
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    normalize_reward: bool = False
    """Wrap the envs in VecNormalize (rewards only; the extractor scales observations itself)."""

    net_arch: tuple[int, ...] = (256, 256)
    """Hidden layers of the actor and critic heads, after the multimodal extractor."""
    token_dim: int = 64
    """Size of each modality token in the extractor."""
    fusion: str = "concat"
    cnn_width: int = 32
    object_heads: int = 2
    """Goal-driven attention heads over the per-object rows of `objects` (state mode; 0 disables)."""
    neighbour_tokens: bool = False
    """With object attention: one more token per head, what stands near the attended object
    (`agent.policy_features.ObjectAttention`); a new network shape, so only for new students."""
    action_bins: int = 0
    """0: SB3's Gaussian action head. N >= 3: a categorical over N values per action dimension
    (`agent.policy_heads`), whose mode picks one side where the labels jump instead of their average."""
    log_std_init: float = -0.5
    image_size: int = 64
    """Camera resolution in rgbd modes."""
    pretrained_encoders: str = ""
    """A checkpoint from `embodia pretrain-perception` whose camera and touch encoders initialise the policy's
    same-named encoders (rgbd modes; "" starts them fresh). A resumed run reads it again (to freeze the same
    encoders), then its own checkpoint's weights replace the loaded ones."""
    freeze_encoders: bool = False
    """With `pretrained_encoders`: keep the loaded encoders fixed during training (only the rest learns)."""

    reward_type: str = "dense"
    progress_reward: float = 0.0
    """Potential-based shaping in training: weight of the change in the env's dense reward term."""
    approach_reward: float = 0.0
    """Potential-based shaping in training: weight of the "above it, then down" approach funnel."""
    skill_text_fraction: float = 0.2
    """Share of episodes whose instruction is the agent's skill-call text instead of a template phrasing."""
    start_held_fraction: float = 0.0
    """Place tasks: share of episodes that start with the object already grasped (the scripted pick runs first)."""

    checkpoint_every: int = 20_480
    """Steps between checkpoints (rounded up to whole rollouts); a kill loses at most this much."""
    eval_every: int = 20_480
    """Steps between evaluations (rounded up to whole rollouts)."""
    eval_episodes: int = 20
    keep_checkpoints: int = 2
    statistics_steps: int = 800
    """Random-action env steps that set the policy's input standardisation (see agent.policy_features)."""
    torch_threads: int = 1
    """Torch threads of the learner process (1 keeps results independent of the machine's core count)."""
    update_threads: int = 1
    """Torch threads during the PPO update only. The env workers idle then, so on a small machine the update
    can use their cores; while collecting, the learner keeps `torch_threads` and leaves the cores to them."""
    worker_timeout: float = 300.0
    """Seconds to wait for an env worker's answer before declaring it hung."""
    spare_worlds: int = 8
    """Worlds each env worker builds ahead while it waits for the learner (0: off; ~33 MB each). A reset
    then swaps one in (~3 ms) instead of rebuilding the kitchen (~16 ms); rollouts are bit-identical."""

    grounding_steps: int = 0
    """Before PPO: cross-entropy steps teaching the object attention which object a sentence names (0: off)."""
    bc_warmstart: bool = False
    """Pretrain the actor (and critic) on scripted-expert episodes before PPO."""
    bc_episodes: int = 100
    bc_epochs: int = 30
    bc_learning_rate: float = 1e-3
    bc_batch_size: int = 256
    bc_lr_schedule: str = "constant"
    """Behaviour cloning's learning rate over its epochs: constant, or cosine decay to zero (a finer final fit)."""
    bc_log_std: float = -1.0
    """Log std of the action distribution after the warm start (BC itself would shrink it to nothing)."""
    bc_action_noise: float = 0.0
    """Std of Gaussian noise added to the expert's *executed* actions while recording (DART, Laskey et al.
    2017); the recorded labels stay clean, so the data shows how the expert recovers from the drift a
    cloned policy will make."""

    def __post_init__(self) -> None:
        _check(self.obs_mode in OBS_MODES, f"obs_mode must be one of {', '.join(OBS_MODES)}, got {self.obs_mode!r}")
        _check(self.encoder in ENCODERS, f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        _check(self.lr_schedule in LR_SCHEDULES,
               f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        _check(isinstance(self.spare_worlds, int) and self.spare_worlds >= 0,
               f"spare_worlds must be a non-negative integer, got {self.spare_worlds!r}")
        _check(self.vec_env != "actors" or (self.obs_mode == "state" and not self.normalize_reward),
               f"vec_env 'actors' needs obs_mode 'state' and normalize_reward false (its workers act on raw "
               f"observations and rewards), got obs_mode {self.obs_mode!r}, normalize_reward "
               f"{self.normalize_reward}; use vec_env 'split'")
        _check(self.vec_env in VEC_ENVS, f"vec_env must be one of {', '.join(VEC_ENVS)}, got {self.vec_env!r}")
        _check(self.start in ("reset", "chain"), f"start must be reset or chain, got {self.start!r}")
        _check(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
               f"device must be auto, cpu or cuda[:N], got {self.device!r}")
        _check(self.fusion in FUSIONS, f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        for name in ("n_envs", "total_steps", "n_steps", "batch_size", "n_epochs", "checkpoint_every",
                     "eval_every", "eval_episodes", "keep_checkpoints", "token_dim", "bc_episodes", "bc_epochs",
                     "torch_threads", "update_threads", "statistics_steps"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        for name in ("skill_text_fraction", "start_held_fraction"):
            _check(0.0 <= getattr(self, name) <= 1.0, f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        _check(0 < self.gamma <= 1 and 0 < self.gae_lambda <= 1, "gamma and gae_lambda must be in (0, 1]")
        _check(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}")
        _check(self.bc_lr_schedule in BC_LR_SCHEDULES,
               f"bc_lr_schedule must be one of {', '.join(BC_LR_SCHEDULES)}, got {self.bc_lr_schedule!r}")
        _check(self.bc_action_noise >= 0, f"bc_action_noise must be >= 0, got {self.bc_action_noise}")
        _check(self.progress_reward >= 0 and self.approach_reward >= 0, "shaping weights must be >= 0")
        _check(self.progress_reward == 0 or self.reward_type == "dense",
               "progress_reward shapes the dense reward; it needs reward_type dense")
        self._check_encoders()
        self._check_sizes()

    def _check_encoders(self) -> None:
        """Pretrained encoders need cameras to go into, and a file that exists, before any run folder is made."""
        if not self.pretrained_encoders:
            _check(not self.freeze_encoders, "freeze_encoders needs pretrained_encoders (a checkpoint path)")
            return
        _check(self.obs_mode != "state",
               f"pretrained_encoders initialise camera and touch encoders; obs_mode {self.obs_mode!r} has none "
               f"(use rgbd or rgbd_touch)")
        _check(Path(self.pretrained_encoders).is_file(),
               f"pretrained_encoders: no checkpoint file at {self.pretrained_encoders!r} "
               f"(expected the perception.pt of an `embodia pretrain-perception` run)")

    def _check_sizes(self) -> None:
        """Refuse sizes that would exhaust memory before anything is allocated or any folder is made."""
        _check(isinstance(self.seed, int) and 0 <= self.seed <= MAX_SEED,
               f"seed must be an integer in [0, {MAX_SEED}], got {self.seed!r}")
        _check(self.image_size >= 8, f"image_size must be >= 8, got {self.image_size}")
        for name in ("object_heads", "grounding_steps"):
            _check(isinstance(getattr(self, name), int) and getattr(self, name) >= 0,
                   f"{name} must be a non-negative integer, got {getattr(self, name)!r}")
        _check(self.action_bins == 0 or 3 <= self.action_bins <= 1024,
               f"action_bins must be 0 (a Gaussian head) or between 3 and 1024, got {self.action_bins!r}")
        for name, limit in SIZE_LIMITS.items():
            _check(getattr(self, name) <= limit, f"{name} must be at most {limit:,}, got {getattr(self, name):,}")
        _check(all(width <= 16_384 for width in self.net_arch), f"net_arch layers must be <= 16384, got "
                                                                  f"{list(self.net_arch)}")
        need = self.rollout_buffer_bytes()
        _check(need <= MAX_ROLLOUT_BUFFER_BYTES,
               f"n_steps x n_envs = {self.n_steps:,} x {self.n_envs} = {self.rollout_size:,} steps per rollout would "
               f"need about {need / 2**30:,.1f} GiB of rollout buffer ({self.obs_mode} observations); the limit is "
               f"{MAX_ROLLOUT_BUFFER_BYTES // 2**30} GiB: lower n_steps or n_envs")

    def rollout_buffer_bytes(self) -> int:
        """Estimated size of SB3's rollout buffer (float32 observations) for one rollout of this config."""
        floats = STATE_FLOATS_PER_STEP
        if self.obs_mode != "state":
            floats += 2 * self.image_size**2 * 4  # front and wrist cameras, RGB + depth
        return self.rollout_size * floats * 4

    @property
    def rollout_size(self) -> int:
        """Environment steps per PPO update (all envs together)."""
        return self.n_steps * self.n_envs

    def rounded(self, steps: int) -> int:
        """`steps` rounded up to whole rollouts (checkpoints and evaluations happen between rollouts)."""
        return -(-steps // self.rollout_size) * self.rollout_size

    def to_dict(self) -> dict[str, Any]:
        """The config as plain YAML-safe values (tuples become lists), field by field."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["net_arch"] = list(self.net_arch)
        return data

    def to_yaml(self) -> str:
        """The config as YAML, fields in declaration order: what a run folder's config.yaml holds."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


class LinearSchedule:
    """SB3 learning-rate schedule: `initial` times the share of training still to run (1 → 0).

    SB3 measures that share as 1 - steps done / total steps of the whole run (also across `--resume`, which
    continues with `reset_num_timesteps=False`), so an interrupted run follows the same curve. A class rather
    than a closure keeps it picklable into checkpoints.
    """

    def __init__(self, initial: float) -> None:
        self.initial = initial

    def __call__(self, progress_remaining: float) -> float:
        """Learning rate for the share of training still to go: falls linearly to 0 and never below."""
        return self.initial * max(0.0, progress_remaining)


def learning_rate(config: TrainConfig) -> float | LinearSchedule:
    """What PPO gets as its learning rate for this config."""
    return LinearSchedule(config.learning_rate) if config.lr_schedule == "linear" else config.learning_rate


def resolve_device(device: str) -> str:
    """`auto` → "cuda" when torch sees a GPU, else "cpu" (SB3's rule); an explicit device is returned as is.

    A CUDA device asked for on a machine without one is an error rather than a silent CPU run.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but torch sees no CUDA device; use --device auto or cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    return device


def neighbour_kwargs(config: TrainConfig) -> dict[str, bool]:
    """The extractor argument for neighbour tokens, only when they are on.

    Why: the architecture (and so the card) of every network without them stays as it was written.
    """
    return {"neighbour_tokens": True} if config.neighbour_tokens else {}


def policy_class(config: TrainConfig) -> type:
    """The SB3 policy class the config's action head needs (the stock Gaussian one unless `action_bins`)."""
    from stable_baselines3.common.policies import MultiInputActorCriticPolicy

    from agent.policy_heads import BinnedActorCriticPolicy

    return BinnedActorCriticPolicy if config.action_bins else MultiInputActorCriticPolicy


def head_kwargs(config: TrainConfig) -> dict[str, int]:
    """The policy constructor's head argument, only for a binned head.

    Why: every Gaussian architecture (and so every card) reads as it was written.
    """
    return {"action_bins": config.action_bins} if config.action_bins else {}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)


def field_names() -> list[str]:
    """Names of every `TrainConfig` field, for checking the keys of a config file or sweep."""
    return [f.name for f in dataclasses.fields(TrainConfig)]


def from_mapping(values: Mapping[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """A config from `base` (or the defaults) with `values` replacing fields; unknown keys are an error."""
    base = base or TrainConfig()
    known = set(field_names())
    unknown = {k: v for k, v in values.items() if k not in known}
    if unknown:
        raise InputError(f"unknown config keys {sorted(unknown)}; valid keys: {', '.join(field_names())}")
    clean = {k: _coerce(k, v) for k, v in values.items()}
    return dataclasses.replace(base, **clean)


def _coerce(name: str, value: Any) -> Any:
    """Check a value's type against the field's default (YAML and --set give ints for floats and lists)."""
    default = getattr(TrainConfig(), name)
    if name == "net_arch":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and v > 0 for v in value):
            raise InputError(f"net_arch must be a list of positive integers, got {value!r}")
        return tuple(value)
    if name == "target_kl":
        return None if value is None else float(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InputError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, float) and not isinstance(value, bool):
        try:
            return float(value)  # YAML reads "1e-4" (no dot) as a string
        except (TypeError, ValueError):
            raise InputError(f"{name} must be a float, got {value!r}") from None
    if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
        raise InputError(f"{name} must be a {type(default).__name__}, got {value!r}")
    return value


def config_path(name: str) -> Path:
    """The YAML file for a config name (`reach` → experiments/configs/reach.yaml) or an explicit path."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"no config file at {path}")
        return path
    candidate = CONFIG_DIR / f"{name}.yaml"
    if not candidate.is_file():
        names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no config named {name!r}; available: {', '.join(names) or 'none'}")
    return candidate


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file, with errors that name the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as error:
        raise InputError(f"{path} is not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
    return data


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """`["ppo_key=1e-4", "net_arch=[64, 64]"]` → {key: YAML-parsed value}."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            values[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise InputError(f"--set {pair!r}: value is not valid YAML ({error})") from error
    return values


def load_config(name: str, assignments: Mapping[str, Any] | None = None,
                flags: Mapping[str, Any] | None = None) -> TrainConfig:
    """The task's config file, then `--set` assignments, then explicit flags (None flags are ignored)."""
    config = from_mapping(read_yaml(config_path(name)))
    config = from_mapping(dict(assignments or {}), config)
    return from_mapping({k: v for k, v in (flags or {}).items() if v is not None}, config)


def resume_config(stored: TrainConfig, requested: Mapping[str, Any]) -> TrainConfig:
    """The stored config with only resume-safe changes applied; anything else is refused."""
    changed = {k: v for k, v in requested.items() if v is not None and _coerce(k, v) != getattr(stored, k)}
    refused = sorted(set(changed) - set(RESUME_MUTABLE))
    if refused:
        listing = ", ".join(f"{k}: {getattr(stored, k)!r} -> {changed[k]!r}" for k in refused)
        raise InputError(f"--resume continues the stored config; cannot change {listing} "
                         f"(only {', '.join(RESUME_MUTABLE)} may change); start a new --name instead")
    return from_mapping(changed, stored)
