"""DAgger (Ross et al. 2011) for skill policies: the student acts, the scripted expert labels, the data grows.

Round 0 records expert episodes. Each later round `r` runs the current student with a beta-mixture (the expert's
action is executed with probability beta_r = `beta0`^r, the student's otherwise), the expert labels every visited
state, and the round is written as its own Minari dataset; then the student is trained by behaviour cloning on all
rounds so far, read back with `minari.load_dataset`. The student is the same SB3 `MultiInputActorCriticPolicy`
with the project's `StandardizedExtractor` (the `MultiModalExtractor` plus input standardisation and object
attention) that the PPO skills use, so the learned-skill provider, the critic-based affordance and PPO
fine-tuning keep working on it. The critic is regressed on the discounted env return of the recorded episodes.

The expert reads privileged state; the student sees only the observation set it is trained on (`state`:
proprio + object rows; `rgbd_touch`: cameras, touch, proprio) plus the goal sentence's embedding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from envs.chain_starts import PLACE_TASKS, crowdable
from envs.tasks import TASK_NAMES, TaskSpec, valid_arguments
from experiments.common.errors import InputError
from experiments.common.jsonio import write_json
from experiments.imitation.dataset import Episode, argument_indices, load_dataset, transitions, write_dataset
from experiments.imitation.learned_prefix import check_prefix
from experiments.imitation.rollout import OBS_SETS, SkillEnv, check_labeller, rollout
from experiments.training.bc import ExpertData, pretrain
from experiments.training.config import (
    TrainConfig,
    config_path,
    head_kwargs,
    load_config,
    neighbour_kwargs,
    policy_class,
    resolve_device,
)
from experiments.training.language import EmbeddingTable, all_texts

logger = logging.getLogger(__name__)
START_MODES = ("reset", "chain")
REFITS = ("continue", "fresh")
DAGGER_OWNED_KEYS = ("task", "obs_mode", "start", "seed", "encoder", "device", "bc_epochs", "bc_lr_schedule",
                     "pretrained_encoders")
NETWORK_SHAPE_KEYS = ("net_arch", "token_dim", "fusion", "cnn_width", "object_heads", "neighbour_tokens", "action_bins",
                      "image_size")
TRAIN_SEED = 3_000_000
"""Training episodes use seeds from here (round r, episode i: TRAIN_SEED + 100_000 r + i), far from evaluation's."""


@dataclass(frozen=True)
class DaggerConfig:
    """What one DAgger run does."""

    task: str
    obs_mode: str = "state"
    start: str = "chain"
    rounds: int = 3
    """DAgger rounds after the expert round (0: plain behaviour cloning)."""
    expert_episodes: int = 200
    episodes_per_round: int = 150
    beta0: float = 0.5
    """Round r executes the expert's action with probability beta0 ** r."""
    seed: int = 0
    encoder: str = "minilm"
    device: str = "auto"
    bc_epochs: int = 30
    skill_text_fraction: float = 0.5
    init: str | None = None
    """A shipped policy card to start the student from (e.g. the reset-trained PPO skill), else a fresh student
    (input statistics from the expert round, then the task's grounding pretraining)."""
    pretrained_encoders: str = ""
    """A fresh student's camera and touch encoders start from this `embodia pretrain-perception` checkpoint."""
    refit: str = "continue"
    """After each round: `continue` fine-tunes the current student on all data so far; `fresh` fits a new student
    (the `init` card again, or a new network) on it, as Ross et al.'s DAgger does, so that earlier rounds' fits
    cannot bias later ones."""
    bc_lr_schedule: str = "constant"
    """Behaviour cloning's learning rate over its epochs: constant or cosine (decay to zero)."""
    labeller: str = "plain"
    """The expert that labels: "plain", "recovering" (re-grasps an object the student dropped), "patient" (also
    leaves a phase on the state, never on the clock alone) or "state" (places labelled from the state alone);
    see `rollout.LABELLERS`."""
    prefix: str = "scripted"
    """Who runs the chain starts' sub-chains: the scripted experts, the shipped learned skills (the starts a learned
    skill meets in `--skills learned`), or "mixed" (each on half the episodes); see `learned_prefix`."""
    blind_yaw: bool = False
    """The student reads every object's yaw as 0 (state mode): what perceived rows give it, so that the same
    student acts alike on the simulator's rows and on the scene estimator's (`agent.perceived_state`)."""
    focus_targets: tuple[str, ...] = ()
    """Targets (a task's last argument, e.g. "table", "plate"), or object:target pairs ("mug:plate"), that
    `focus_fraction` of the episodes are asked for:
    the arguments are drawn among the task's with such a target, and the chain start is built for them (its prefix
    redrawn until they are feasible). The rest draw their arguments where the prefix ends, as evaluation does."""
    focus_fraction: float = 0.0
    crowd_fraction: float = 0.0
    """Share of episodes whose chain start puts another object in the place's target first (`envs.chain_starts`,
    `crowd`): the bowl, the drawer or the plate already holding something, or (table, a block) the object lifted off
    a support; rare in the natural mix."""
    extra_data: tuple[str, ...] = ()
    """Earlier `embodia dagger` runs (their `--out` folders) of the same skill and observation set whose datasets
    every fit of this run also clones: DAgger's aggregation across runs. Continuing a student (`init`) on new data
    alone let it drift from what it had learned (RESULTS.md, eleventh session)."""
    training_overrides: dict[str, Any] = field(default_factory=dict)
    """`--set KEY=VALUE` changes to the task's training config (e.g. `net_arch`, `token_dim`), for the student's
    network size and cloning hyper-parameters; keys this config sets itself are refused."""

    def __post_init__(self) -> None:
        if self.task not in TASK_NAMES:
            raise InputError(f"unknown skill {self.task!r}; expected one of: {', '.join(TASK_NAMES)}")
        if self.obs_mode not in OBS_SETS:
            raise InputError(f"unknown observation set {self.obs_mode!r}; expected one of: {', '.join(OBS_SETS)}")
        if self.start not in START_MODES:
            raise InputError(f"unknown start mode {self.start!r}; expected one of: {', '.join(START_MODES)}")
        if self.rounds < 0 or self.expert_episodes < 1 or self.episodes_per_round < 1 or self.bc_epochs < 1:
            raise InputError("rounds must be >= 0; expert_episodes, episodes_per_round and bc_epochs >= 1")
        if not 0.0 <= self.beta0 <= 1.0:
            raise InputError(f"beta0 must be in [0, 1], got {self.beta0}")
        if self.refit not in REFITS:
            raise InputError(f"unknown refit {self.refit!r}; expected one of: {', '.join(REFITS)}")
        check_prefix(self.prefix, self.start)
        check_labeller(self.labeller)
        owned = sorted(set(self.training_overrides) & set(DAGGER_OWNED_KEYS))
        if owned:
            raise InputError(f"--set {', '.join(owned)}: set by embodia dagger's own flags; use those instead")
        shaped = sorted(set(self.training_overrides) & set(NETWORK_SHAPE_KEYS))
        if self.init and shaped:
            raise InputError(f"--set {', '.join(shaped)} shapes a new network, but --init starts the student from "
                             f"{self.init}'s; drop one")
        if self.blind_yaw and self.obs_mode != "state":
            raise InputError(f"--blind-yaw hides the yaw of the state rows; --obs-mode {self.obs_mode} has none")
        self._check_episode_options()
        if self.init and self.pretrained_encoders:
            raise InputError("--init and --pretrained-encoders both set a student's starting weights; choose one")

    def _check_episode_options(self) -> None:
        for run in self.extra_data:
            if not (Path(run) / "data" / "embodia").is_dir():
                raise InputError(f"--extra-data {run}: not an `embodia dagger` output folder (no data/embodia in it)")
        if not 0.0 <= self.focus_fraction <= 1.0:
            raise InputError(f"focus fraction must be in [0, 1], got {self.focus_fraction}")
        if bool(self.focus_targets) != (self.focus_fraction > 0):
            raise InputError("--focus-targets and --focus-fraction go together: name the targets and a fraction > 0")
        targets = sorted({args[-1] for args in valid_arguments(self.task)})
        unknown = sorted(entry for entry in self.focus_targets if not _focus_matches(self.task, entry))
        if unknown:
            raise InputError(f"--focus-targets {', '.join(unknown)}: not a target of {self.task} (nor an "
                             f"object:target pair of its arguments); expected some of: {', '.join(targets)}")
        if self.focus_targets and self.start != "chain":
            raise InputError("--focus-targets asks for chain starts built for the focused arguments; use --start chain")
        if not 0.0 <= self.crowd_fraction <= 1.0:
            raise InputError(f"crowd fraction must be in [0, 1], got {self.crowd_fraction}")
        if self.crowd_fraction > 0 and (self.start != "chain" or self.task not in PLACE_TASKS):
            raise InputError(f"--crowd-fraction crowds the target of a place's chain start; it needs --start chain and "
                             f"a place skill ({', '.join(PLACE_TASKS)}), got --start {self.start} --skill {self.task}")

    def train_config(self) -> TrainConfig:
        """The task's training config (network sizes, BC hyper-parameters) with this run's settings."""
        overrides = {"obs_mode": self.obs_mode, "start": self.start, "seed": self.seed, "encoder": self.encoder,
                     "device": self.device, "bc_epochs": self.bc_epochs,
                     "bc_lr_schedule": self.bc_lr_schedule, "pretrained_encoders": self.pretrained_encoders}
        config_path(self.task)  # a clear error if the task has no config
        return load_config(self.task, self.training_overrides, overrides)


def beta_schedule(round_index: int, beta0: float) -> float:
    """Probability that the expert's action is executed in round `round_index` (1 in round 0)."""
    return 1.0 if round_index == 0 else beta0**round_index


def new_student(config: TrainConfig, env: SkillEnv, data: tuple[dict[str, np.ndarray], np.ndarray],
                table: EmbeddingTable, device: str,
                argument_index: np.ndarray | None = None) -> tuple[Any, dict[str, Any] | None]:
    """A fresh policy of the PPO skills' architecture, its inputs standardised with the expert data's statistics.

    With `grounding_steps` the object attention is first taught which objects each sentence names, on the recorded
    (sentence, scene) pairs (given `argument_index`, the task arguments' index of each recorded step) as well as
    random ones; returns the policy and that step's report (None without it).
    """
    from agent.policy_features import standardized_policy_kwargs

    torch.manual_seed(config.seed)
    encoders = {"pretrained": config.pretrained_encoders} if config.pretrained_encoders else {}
    kwargs = standardized_policy_kwargs(token_dim=config.token_dim, fusion=config.fusion, cnn_width=config.cnn_width,
                                        object_heads=config.object_heads, **neighbour_kwargs(config), **encoders)
    policy = policy_class(config)(
        env.observation_space, env.action_space, lambda _: config.bc_learning_rate, **head_kwargs(config),
        net_arch={"pi": list(config.net_arch), "vf": list(config.net_arch)}, log_std_init=config.log_std_init,
        **kwargs).to(device)
    observations, _ = data
    extractor = policy.features_extractor
    extractor.reload_pretrained()  # SB3's orthogonal init overwrote what the constructor loaded
    samples = {k: v for k, v in observations.items() if k in extractor.standardized and k != "goal"}
    samples["goal"] = table.encode(table.texts)
    extractor.set_statistics(samples)
    report = None
    if config.grounding_steps > 0 and extractor.object_attention is not None:
        from experiments.training.grounding import argument_labels, pretrain_grounding

        paired = {}
        if argument_index is not None:
            arguments = valid_arguments(config.task)
            paired = {"scene_goals": observations["goal"],
                      "scene_labels": argument_labels([arguments[i] for i in argument_index])}
        report = pretrain_grounding(SimpleNamespace(policy=policy), config, table, observations["objects"],
                                    config.grounding_steps, **paired)
    policy.set_training_mode(False)
    return policy, report


def _initial_policy(card_path: str, env: SkillEnv, device: str, blind_yaw: bool = False) -> Any:
    """The policy of a shipped card, checked to read the same observation keys (and yaw view) as this run's env."""
    from agent.perceived_state import BLIND_YAW_KEY
    from agent.policy import load_sb3_policy, read_card

    card = read_card(card_path)
    if card.task != env.task:
        raise InputError(f"--init {card_path} is a {card.task} policy; this run trains {env.task}")
    if bool(card.meta.get(BLIND_YAW_KEY)) != blind_yaw:
        raise InputError(f"--init {card_path} was trained with blind_yaw {bool(card.meta.get(BLIND_YAW_KEY))}; "
                         f"this run has blind_yaw {blind_yaw} (add or drop --blind-yaw)")
    policy = load_sb3_policy(card.path, device)
    if set(policy.observation_space.spaces) != set(env.observation_space.spaces):
        raise InputError(f"--init {card_path} reads {sorted(policy.observation_space.spaces)}; this run's observations "
                         f"are {sorted(env.observation_space.spaces)}")
    return policy


def predictor(policy: Any) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """Deterministic actions of `policy` for one observation."""
    return lambda obs: policy.predict(obs, deterministic=True)[0]


def relabel_round(env: SkillEnv, seeds: list[int], student: Callable | None, beta: float,
                  labeller: str = "plain",
                  arguments: Callable[[int], tuple[str, ...] | None] | None = None,
                  crowding: Callable[[int], bool] | None = None) -> list[Episode]:
    """The episodes of one round: `student` (None: the expert) acts with the beta-mixture, the expert labels.

    `arguments(seed)` names an episode's task arguments (None: drawn where its chain start ends); `crowding(seed)`
    whether its chain start is crowded (`envs.chain_starts.crowdable`: named arguments without a crowded case are
    never crowded).
    """
    pick = arguments or (lambda seed: None)
    crowded = crowding or (lambda seed: False)
    episodes = []
    for seed in seeds:
        args = pick(seed)
        crowd = crowded(seed) and (args is None or crowdable(TaskSpec(env.task, args)))
        episodes.append(rollout(env, seed, student, beta, args=args, labeller=labeller, crowd=crowd))
    return episodes


def crowded_starts(fraction: float) -> Callable[[int], bool]:
    """Per seed: whether its chain start is crowded (probability `fraction`, drawn from the seed alone).

    Why: inside chains the learned place_in dropped a block onto the one already in the bowl (7 of 14 such starts
    from the card's distribution, against 59 of 59 into an empty bowl; RESULTS.md), and place_on put the mug onto a
    plate that already holds a block 4 times in 15; the natural mix asks for either about one time in ten.
    """

    def crowd(seed: int) -> bool:
        return bool(np.random.default_rng([seed, 0xC40D]).random() < fraction)

    return crowd


def _focused(args: tuple[str, ...], entry: str) -> bool:
    """Whether `args` is what a focus entry names: a target ("plate") or an object and its target ("mug:plate")."""
    return args == tuple(entry.split(":")) if ":" in entry else args[-1] == entry


def _focus_matches(task: str, entry: str) -> bool:
    return any(_focused(args, entry) for args in valid_arguments(task))


def focused_arguments(task: str, targets: tuple[str, ...], fraction: float) -> Callable[[int], tuple[str, ...] | None]:
    """Per seed: with probability `fraction`, arguments of `task` that `targets` names (uniformly), else None.

    An entry of `targets` is a target ("plate": every argument ending with it) or an object and its target
    ("mug:plate": that one). Why: the natural chain-start mix asks some hard cases rarely (the mug onto a plate
    that already holds a block, a block put back on the table from a stack), and a student cloned from it fails
    there most (RESULTS.md).
    """
    options = [args for args in valid_arguments(task) if any(_focused(args, entry) for entry in targets)]

    def choose(seed: int) -> tuple[str, ...] | None:
        rng = np.random.default_rng([seed, 0xF0C5])
        if not options or rng.random() >= fraction:
            return None
        return options[int(rng.integers(len(options)))]

    return choose


def earlier_datasets(runs: tuple[str, ...], task: str, obs_mode: str, observation_space: Any) -> list[tuple[Path, str]]:
    """(data root, dataset name) of every dataset of `task`/`obs_mode` in the given `embodia dagger` output folders."""
    found: list[tuple[Path, str]] = []
    for run in runs:
        root = Path(run) / "data"
        names = sorted(p.name.removesuffix("-v0") for p in (root / "embodia").glob(f"{task}-{obs_mode}-*-v0")
                       if p.is_dir()) if (root / "embodia").is_dir() else []
        if not names:
            raise InputError(f"--extra-data {run}: no {task} {obs_mode} DAgger datasets under {root / 'embodia'}")
        for name in names:
            stored = load_dataset(root, name).observation_space
            if stored != observation_space:
                raise InputError(f"--extra-data {run}: dataset {name} observes {stored}, this run {observation_space}")
            found.append((root, name))
    return found


def fit(policy: Any, root: Path, names: list[str], config: TrainConfig,
        extra: list[tuple[Path, str]] | None = None) -> dict[str, Any]:
    """Behaviour cloning on every round's Minari dataset so far (read back with `minari.load_dataset`), and `extra`."""
    datasets = [load_dataset(root, name) for name in names] + [load_dataset(r, n) for r, n in extra or []]
    observations, labels, returns, episodes, successes = transitions(datasets, config.gamma)
    data = ExpertData(observations, labels, returns, episodes, successes)
    result = pretrain(SimpleNamespace(policy=policy), data, config)
    policy.set_training_mode(False)
    return {k: v for k, v in result.items() if k != "curve"} | {"final_nll": result["curve"][-1]["nll"]}


def run_dagger(cfg: DaggerConfig, out: Path, table: EmbeddingTable | None = None,
               progress: Callable[[str], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """Run every round; returns the trained policy and a summary (per round: samples, successes, seconds)."""
    from perception.text import default_text_encoder

    config = cfg.train_config()
    device = resolve_device(cfg.device)
    torch.set_num_threads(config.torch_threads)
    table = table or EmbeddingTable.build(default_text_encoder(cfg.encoder), all_texts(cfg.task), source=cfg.encoder)
    env = SkillEnv(cfg.task, cfg.obs_mode, cfg.start, table, cfg.skill_text_fraction, config.image_size, cfg.prefix,
                   blind_yaw=cfg.blind_yaw)
    data_root = out / "data"
    extra = earlier_datasets(cfg.extra_data, cfg.task, cfg.obs_mode, env.observation_space)
    names: list[str] = []
    rounds: list[dict[str, Any]] = []
    policy = None
    started = time.perf_counter()
    try:
        for index in range(cfg.rounds + 1):
            tick = time.perf_counter()
            beta = beta_schedule(index, cfg.beta0)
            count = cfg.expert_episodes if index == 0 else cfg.episodes_per_round
            seeds = [TRAIN_SEED + 100_000 * index + cfg.seed * 10_000 + i for i in range(count)]
            student = None if policy is None else predictor(policy)
            focus = focused_arguments(cfg.task, cfg.focus_targets, cfg.focus_fraction) if cfg.focus_targets else None
            crowd = crowded_starts(cfg.crowd_fraction) if cfg.crowd_fraction > 0 else None
            episodes = relabel_round(env, seeds, student, beta, cfg.labeller, focus, crowd)
            name = f"{cfg.task}-{cfg.obs_mode}-{cfg.start}-s{cfg.seed}-r{index}"
            write_dataset(data_root, name, episodes, env.observation_space, env.action_space,
                          description=f"DAgger round {index} of {cfg.task} ({cfg.obs_mode}, {cfg.start} starts): "
                                      f"expert labels; executed actions in infos['executed_action'] (beta={beta:g})",
                          algorithm="dagger-scripted-expert")
            names.append(name)
            collect_s = time.perf_counter() - tick
            if cfg.refit == "fresh":
                policy = None
            if policy is None and cfg.init is not None:
                policy = _initial_policy(cfg.init, env, device, cfg.blind_yaw)
            grounding = None
            if policy is None:
                first_round = [load_dataset(data_root, names[0])]
                first = transitions(first_round, config.gamma)
                policy, grounding = new_student(config, env, (first[0], first[1]), table, device,
                                                argument_indices(first_round))
            fitted = fit(policy, data_root, names, config, extra)
            row = {"round": index, "beta": beta, "episodes": count, "steps": sum(len(e) for e in episodes),
                   "rollout_successes": sum(e.success for e in episodes), "collect_s": round(collect_s, 1),
                   "fit_s": round(fitted["seconds"], 1), "bc": fitted, "dataset": name}
            if grounding is not None:
                row["grounding"] = grounding
                if progress:
                    progress(f"round {index}: grounding, attention right per head {grounding['accuracy_after']} "
                             f"(recorded pairs: {grounding.get('paired_accuracy_after')})")
            rounds.append(row)
            if progress:
                progress(f"round {index}: beta {beta:.3f}, {row['rollout_successes']}/{count} episodes succeeded while "
                         f"collecting, {fitted['samples']} samples, nll {fitted['final_nll']:.3f}, "
                         f"{collect_s:.0f}s collect + {fitted['seconds']:.0f}s fit")
    finally:
        env.close()
    summary = {"config": asdict(cfg), "device": device, "rounds": rounds,
               "samples": sum(r["steps"] for r in rounds), "seconds": round(time.perf_counter() - started, 1),
               "datasets": names, "data_root": str(data_root)}
    return policy, summary


def write_summary(out: Path, summary: dict[str, Any]) -> Path:
    """Write the run's per-round figures to `out/dagger.json` atomically; returns the path."""
    return write_json(out / "dagger.json", summary, indent=1)
