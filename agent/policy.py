"""Learned skill policies (PPO, conditioned on the skill call's sentence) and the provider that picks them.

A shipped skill policy is two files in `agent/skill_policies/`: `<task>.safetensors`, the weights of a
stable-baselines3 `MultiInputActorCriticPolicy` with its architecture as JSON metadata (`agent.policy_io`: no
pickle, so opening a policy file never runs code; a few hundred kB), and `<task>.json`, its card: the format
tag, the env task it was trained on, the observation mode, the architecture, the text encoder whose embedding
it reads as `goal`, the command that trained it and the evaluation that measured it. `LearnedSkillProvider`
reads the cards and, per skill call, hands the agent the learned policy or the scripted fallback it was given
(`--skills learned|scripted|auto`; `auto` trusts a learned policy only when the lower end of its recorded success
rate's 95% interval reaches a threshold).

This module never imports the simulator: observations arrive as dicts of arrays, the fallback arrives as
a callable, and the env task a call maps to is read from the documented `info["task"]` string.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent.errors import InputError
from agent.loop import SkillPolicy
from agent.planner.affordance import MIN_AFFORDANCE
from agent.skills import CONTAINERS, SkillCall, call_text, object_text
from agent.symbolic import SymbolicState
from perception.layout import GOAL_KEY
from perception.scene_estimator import SceneEstimator
from perception.text import TextEncoder

logger = logging.getLogger(__name__)

FORMAT = "embodia.skill_policy/1"
DEFAULT_DIR = Path(__file__).resolve().parent / "skill_policies"
VISUOMOTOR_DIR = DEFAULT_DIR / "rgbd_touch"
"""Shipped skills that see only cameras, touch, proprioception and the goal (no privileged `objects` rows)."""
DEFAULT_THRESHOLD = 0.85
"""`auto` uses a learned skill where the lower end of its card's 95% interval from chain starts reaches this. At 0.8
the place_on continued with the local labeller (89/100, [0.81, 0.94]) replaced the expert and state chains fell from
4.89 to 4.70 (RESULTS.md, eleventh session): `auto` is for the best chain, and the expert still places better."""
MODES = ("scripted", "learned", "auto")
PERCEIVED_EVAL_KEY = "eval_perceived"
"""A card's evaluation with episodes ended as the perceiving loop ends skills (`embodia perceive-skill`)."""
RETRIES = ("repeat", "sample")
"""How a learned policy acts on a call it already failed in the episode: its mean action again, or sampled."""
SAFE_SUFFIX = ".safetensors"
_PLACE_TASK = re.compile(r"(place_in|place_on)\((\w+), (\w+)\)")


def skill_goal_text(task: str, args: Sequence[str]) -> str:
    """The sentence a learned policy for env `task` is conditioned on when the agent calls it.

    It is the planner's skill-call text, except for placing: the agent says "put it in the bowl", but a
    place policy has to know *what* to put, so the held object is named ("put the red block in the bowl").
    """
    if task in ("place_in", "place_on"):
        relation = "in" if task == "place_in" else "on"
        return f"put {object_text(args[0])} {relation} {object_text(args[1])}"
    return call_text(task, args)


def task_for_skill(call: SkillCall) -> str:
    """The env task whose policy executes `call` (`place` splits into `place_in` / `place_on`)."""
    if call.skill == "place":
        return "place_in" if call.args[0] in CONTAINERS else "place_on"
    return call.skill


def goal_text_for(call: SkillCall, info: dict[str, Any]) -> str:
    """The goal sentence for `call`, naming the held object for `place` (read from `info["task"]`)."""
    if call.skill != "place":
        return call.text
    match = _PLACE_TASK.fullmatch(str(info.get("task", "")))
    if match is None:
        raise InputError(f"a learned place policy needs info['task'] like 'place_in(red_block, bowl)', "
                         f"got {info.get('task')!r}")
    return skill_goal_text(match[1], (match[2], match[3]))


@dataclass(frozen=True)
class PolicyCard:
    """A shipped policy's description: what it does, how it was made, how well it did."""

    task: str
    path: Path
    meta: dict[str, Any]

    @property
    def success_rate(self) -> float:
        """The evaluation success rate the card records (a fraction in [0, 1])."""
        return float(self.meta["eval"]["rate"])

    def rate_judged(self, by_perception: bool) -> float:
        """The card's rate as the loop that will run it judges success: perception's, where the card has one."""
        judged = self.meta.get(PERCEIVED_EVAL_KEY) if by_perception else None
        return float(judged["rate"]) if judged else self.success_rate

    def lower_bound_judged(self, by_perception: bool) -> float:
        """The lower end of that rate's 95% interval (the rate itself where the card records no interval).

        `auto` trusts a learned skill on this, not on the point rate: with place_on at 82/100 [0.73, 0.88] on its
        card, a point-rate rule handed it the places and the default agent fell from 4.88 to 4.72 on 100 chains.
        """
        judged = self.meta.get(PERCEIVED_EVAL_KEY) if by_perception else None
        entry = judged if judged else self.meta["eval"]
        interval = entry.get("ci95") if isinstance(entry, dict) else None
        return float(interval[0]) if interval else self.rate_judged(by_perception)

    @property
    def encoder(self) -> str:
        """The text encoder the policy was trained with; its goals must be embedded with the same one."""
        return str(self.meta["encoder"])


REQUIRED_CARD_KEYS = ("format", "task", "file", "obs_mode", "encoder", "goal_dim", "eval", "train_command")


def read_card(path: str | Path) -> PolicyCard:
    """Parse and check one `<task>.json` card; the policy file it names must exist next to it."""
    path = Path(path)
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not a readable skill-policy card: {error}") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise InputError(f"{path}: expected a card with format {FORMAT!r}, found {found!r}")
    missing = [key for key in REQUIRED_CARD_KEYS if key not in meta]
    if missing or "rate" not in meta.get("eval", {}):
        raise InputError(f"{path}: card lacks {missing or ['eval.rate']}; required: {', '.join(REQUIRED_CARD_KEYS)}")
    policy_path = path.parent / meta["file"]
    if policy_path.suffix != SAFE_SUFFIX:
        raise InputError(f"{path} names policy file {meta['file']!r}; shipped policies must be {SAFE_SUFFIX} files "
                         f"(pickle-based .pt files can run code; convert a trusted one with 'embodia convert-policy')")
    if not policy_path.is_file():
        raise FileNotFoundError(f"{path} names policy file {meta['file']!r}, which is not in {path.parent}")
    return PolicyCard(str(meta["task"]), policy_path, meta)


def find_cards(directory: str | Path = DEFAULT_DIR) -> dict[str, PolicyCard]:
    """Every card in `directory`, keyed by env task (an empty dict when there are none)."""
    directory = Path(directory)
    cards = [read_card(p) for p in sorted(directory.glob("*.json"))] if directory.is_dir() else []
    return {card.task: card for card in cards}


def read_observation_space(card: PolicyCard) -> dict[str, tuple[int, ...]]:
    """Observation keys and shapes the card's policy reads (from the architecture the card records).

    A perceived-state card records what the composition reads (the estimator's senses and the goal) as its own
    `observation_space`: its architecture is the state policy's, whose object rows it builds itself.
    """
    spaces = card.meta.get("observation_space") or card.meta.get("architecture", {}).get("observation_space", {}
                                                                                          ).get("spaces")
    if not isinstance(spaces, dict):
        raise InputError(f"{card.path}: the card records no observation space (architecture.observation_space)")
    return {str(key): tuple(int(n) for n in space.get("shape", ())) for key, space in spaces.items()}


def load_sb3_policy(path: str | Path, device: str = "cpu") -> Any:
    """Load a skill policy written by `agent.policy_io.save_policy` (safetensors + JSON architecture).

    Pickle-based files (SB3's `policy.save`, any `torch.save`) are refused with `UnsafePolicyFileError`
    before a byte of them is unpickled: loading them could run code.
    """
    from agent.policy_io import load_policy

    return load_policy(path, device)


def load_card_policy(card: PolicyCard, device: str = "cpu", estimator: SceneEstimator | None = None) -> Any:
    """The policy a card describes: its policy file, behind perceived object rows when the card says so.

    A card with a `perceived_state` entry (`agent.perceived_state`) ships a state policy that acts on what the
    scene estimator sees; `estimator` lets several such skills share one loaded estimator. A card with
    `blind_yaw` true ships a state policy trained with every object's yaw read as 0, and it reads them so here.
    """
    from agent.perceived_state import BLIND_YAW_KEY, PERCEIVED_STATE_KEY, YawBlindPolicy, perceived_policy

    policy = load_sb3_policy(card.path, device)
    if card.meta.get(BLIND_YAW_KEY):
        policy = YawBlindPolicy(policy)  # trained on yaw-blind rows (perceived rows are yaw-blind already)
    spec = card.meta.get(PERCEIVED_STATE_KEY)
    if spec is None:
        return policy
    if not isinstance(spec, dict):
        raise InputError(f"{card.path}: {PERCEIVED_STATE_KEY!r} must be a JSON object, got {type(spec).__name__}")
    measured = card.meta.get("state_policy_sha256")
    if measured is not None and measured != _sha256(card.path):
        # the card's rates (which `auto` trusts) were measured on other weights: re-measure, never guess
        raise InputError(f"{card.path.name}: the state policy {card.path} changed since this card measured it "
                         f"(sha256 {measured[:12]}...); re-card it with `embodia perceive-skill`")
    return perceived_policy(policy, spec, card.path.parent, estimator)


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class LearnedSkillPolicy:
    """Acts with a PPO policy; the goal is the embedding of the call's sentence.

    Args:
        card: the shipped policy's card.
        encoder: text encoder matching the card's (`goal_dim` wide).
        device: torch device for inference.
        estimator: the scene estimator a perceived-state card's policy reads through (None: the card's own).
    """

    def __init__(self, card: PolicyCard, encoder: TextEncoder, device: str = "cpu",
                 estimator: SceneEstimator | None = None) -> None:
        if encoder.dim != int(card.meta["goal_dim"]):
            raise InputError(f"policy {card.path.name} reads {card.meta['goal_dim']}-d goals ({card.encoder}) "
                             f"but the encoder gives {encoder.dim}-d vectors")
        self.card = card
        self.name = f"ppo:{card.task}"
        self._encoder = encoder
        self._policy = load_card_policy(card, device, estimator)
        self._keys = [k for k in self._policy.observation_space.spaces if k != GOAL_KEY]
        self._call: SkillCall | None = None
        self._goal: np.ndarray | None = None
        self._sampler: np.random.Generator | None = None

    def sample_actions(self, seed: int | None) -> None:
        """Draw the coming call's actions from the policy's Gaussian (seeded), or act on its mean (None).

        A retry starts where the failed attempt stopped, so the deterministic mean action tends to replay the
        failure; sampling with the policy's own action noise, from a seed fixed by the call and the attempt,
        tries something else and keeps rollouts reproducible.
        """
        self._sampler = None if seed is None else np.random.default_rng(seed)

    def new_episode(self) -> None:
        """A new scene: a perceived-state policy forgets the positions it remembered."""
        if hasattr(self._policy, "new_episode"):
            self._policy.new_episode()

    def reset(self, call: SkillCall) -> None:
        """Start a new call; the goal is embedded at the first `act`, since a `place` goal needs the info dict."""
        self._call = call
        self._goal = None

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        """The policy's deterministic action for the current call, a flat float32 array; RuntimeError before `reset`."""
        if self._call is None:
            raise RuntimeError("call reset(call) before act()")
        if self._goal is None:
            self._goal = self._encoder.encode([goal_text_for(self._call, info)])[0]
        action, _ = self._policy.predict(self._batch(obs, self._goal), deterministic=True)
        action = np.asarray(action, dtype=np.float32).reshape(-1)
        if self._sampler is not None:
            std = torch.exp(self._policy.log_std).detach().cpu().numpy().reshape(-1)
            space = self._policy.action_space
            action = np.clip(action + std * self._sampler.standard_normal(action.shape), space.low, space.high)
        return action.astype(np.float32)

    def value(self, obs: dict[str, np.ndarray], call: SkillCall) -> float:
        """The critic's estimate of the return of running `call` from `obs` (not for `place`, see below)."""
        if call.skill == "place":
            raise InputError("a place call's goal names the held object; value() takes reach/pick/push/open/close")
        goal = self._encoder.encode([call.text])[0]
        obs_tensor, _ = self._policy.obs_to_tensor(self._batch(obs, goal))
        with torch.no_grad():
            return float(self._policy.predict_values(obs_tensor).reshape(-1)[0])

    def _batch(self, obs: dict[str, np.ndarray], goal: np.ndarray) -> dict[str, np.ndarray]:
        missing = [k for k in self._keys if k not in obs]
        if missing:
            raise InputError(f"policy {self.name} needs observation keys {self._keys}; missing {missing} "
                             f"(was it trained in another obs mode? card says {self.card.meta['obs_mode']!r})")
        spaces = self._policy.observation_space.spaces
        batch = {k: fit_image(np.asarray(obs[k]), spaces[k].shape) for k in self._keys}
        batch[GOAL_KEY] = goal
        return batch


def image_fits(given: Sequence[int], expected: Sequence[int]) -> bool:
    """Whether an observation of shape `given` can feed a policy input of shape `expected`.

    It can when the shapes are equal, or when it is an image whose side is a whole multiple of the expected side
    (`fit_image` averages it down).
    """
    given, expected = tuple(given), tuple(expected)
    if given == expected:
        return True
    return (len(given) == len(expected) == 3 and given[2] == expected[2] and given[0] == given[1]
            and expected[0] == expected[1] and given[0] > expected[0] and given[0] % expected[0] == 0)


def fit_image(value: np.ndarray, expected: Sequence[int]) -> np.ndarray:
    """`value` in the policy's input shape.

    An image rendered finer (the scene estimator's front camera may render at 128 px for the 64-px policies) is
    averaged over k x k blocks, the way a coarser camera integrates its pixels.
    """
    expected = tuple(expected)
    if value.shape == expected or value.ndim != 3:
        return value
    if not image_fits(value.shape, expected):
        raise InputError(f"an observation image of shape {list(value.shape)} cannot feed a policy input of shape "
                         f"{list(expected)}")
    k = value.shape[0] // expected[0]
    blocks = value.reshape(expected[0], k, expected[1], k, expected[2]).astype(np.float32).mean(axis=(1, 3))
    if value.dtype == np.uint8:
        return np.clip(np.rint(blocks), 0, 255).astype(np.uint8)
    return blocks.astype(value.dtype)


class LearnedSkillProvider:
    """Per skill call: the learned policy (mode `learned`, or `auto` when good enough) or the fallback.

    Args:
        fallback: gives the scripted policy for a call (injected by the experiments layer).
        mode: scripted, learned or auto.
        policy_dir: folder of shipped policies (cards + files).
        encoder: text encoder; by default the shared encoder named on the cards.
        threshold: `auto` uses a learned policy only if the lower end of its recorded success rate's 95% interval
            is at least this.
        retry: `repeat` acts on the policy's mean action on every attempt; `sample` draws a retried call's actions
            from the policy's Gaussian (seeded by the call and the attempt). In `auto` a failed call goes to the
            expert, so this matters for `learned`.
    """

    def __init__(self, fallback: Callable[[SkillCall], SkillPolicy], mode: str = "auto",
                 policy_dir: str | Path | None = None, encoder: TextEncoder | None = None,
                 threshold: float = DEFAULT_THRESHOLD, retry: str = "repeat",
                 estimator: SceneEstimator | None = None, judged_by_perception: bool = False) -> None:
        if mode not in MODES:
            raise InputError(f"unknown skills mode {mode!r}; expected one of: {', '.join(MODES)}")
        if retry not in RETRIES:
            raise InputError(f"unknown learned retry {retry!r}; expected one of: {', '.join(RETRIES)}")
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"threshold must be in [0, 1], got {threshold}")
        self.fallback, self.mode, self.threshold, self.retry = fallback, mode, threshold, retry
        self.cards = find_cards(policy_dir or DEFAULT_DIR) if mode != "scripted" else {}
        self._encoder = encoder
        self._estimator = estimator
        self.judged_by_perception = judged_by_perception
        self._loaded: dict[str, LearnedSkillPolicy] = {}
        self._failed: set[SkillCall] = set()
        self._failures: dict[SkillCall, int] = {}

    def new_episode(self) -> None:
        """Forget which calls the learned policies failed (a new scene, a fresh chance), and what they saw."""
        self._failed.clear()
        self._failures.clear()
        for policy in self._loaded.values():
            policy.new_episode()

    def record_outcome(self, call: SkillCall, policy_name: str, success: bool) -> None:
        """In `auto` mode, a call a learned policy failed goes to the scripted expert for the rest of the episode.

        Learned skills were trained from the env's reset poses; mid-episode (the arm elsewhere, objects in the
        bowl or drawer) they can fail where the expert does not, and a retry by the same policy from nearly the
        same state tends to fail the same way.
        """
        if not success and policy_name.startswith("ppo:"):
            self._failures[call] = self._failures.get(call, 0) + 1
            if self.mode == "auto":
                self._failed.add(call)

    def choice(self, call: SkillCall) -> tuple[PolicyCard | None, str]:
        """The card to use for `call` (None: use the fallback) and the reason, for traces and reports."""
        task = task_for_skill(call)
        card = self.cards.get(task)
        if self.mode == "scripted":
            return None, "scripted mode"
        if call in self._failed:
            return None, f"learned {task} failed {call.text!r} earlier in this episode"
        if card is None:
            return None, f"no learned policy for {task}"
        trained_on = card.meta["eval"].get("by_argument")
        if trained_on is not None and call.skill != "place" and ", ".join(call.args) not in trained_on:
            return None, f"learned {task} was never trained on ({', '.join(call.args)})"
        rate = card.rate_judged(self.judged_by_perception)
        low = card.lower_bound_judged(self.judged_by_perception)
        judged = " (as perception judges)" if self.judged_by_perception and PERCEIVED_EVAL_KEY in card.meta else ""
        if self.mode == "auto" and low < self.threshold:
            return None, (f"learned {task} succeeds {rate:.0%}{judged}, 95% interval from {low:.0%} < threshold "
                          f"{self.threshold:.0%}")
        return card, f"learned {task} ({rate:.0%} in its evaluation{judged}, 95% interval from {low:.0%})"

    def explain(self, call: SkillCall) -> str:
        """Why `call` gets the policy it gets (the reason half of `choice`), for logs and traces."""
        return self.choice(call)[1]

    def policy_for(self, call: SkillCall) -> SkillPolicy:
        """The learned policy for `call` when one is usable, else the scripted fallback (logged with the reason)."""
        learned = self.learned_policy(call)
        if learned is None:
            logger.info("%s: scripted (%s)", call.text, self.explain(call))
            return self.fallback(call)
        failures = self._failures.get(call, 0) if self.retry == "sample" else 0
        learned.sample_actions(zlib.crc32(f"{call.text}|{failures}".encode()) if failures else None)
        return learned

    def learned_policy(self, call: SkillCall) -> LearnedSkillPolicy | None:
        """The learned policy this provider would run for `call`, or None when it would use the fallback."""
        card, _ = self.choice(call)
        if card is None:
            return None
        if card.task not in self._loaded:
            if self._estimator is None and "perceived_state" in card.meta:  # one estimator for every such skill
                from agent.perceived_state import load_estimator

                self._estimator = load_estimator(str(card.meta["perceived_state"].get("estimator", "shipped")),
                                                 card.path.parent)
            self._loaded[card.task] = LearnedSkillPolicy(card, self._encoder_for(card), estimator=self._estimator)
        return self._loaded[card.task]

    def _encoder_for(self, card: PolicyCard) -> TextEncoder:
        if self._encoder is None:
            from perception.text import default_text_encoder

            self._encoder = default_text_encoder(card.encoder)
        return self._encoder


class LearnedValueAffordance:
    """SayCan's affordance: a learned skill policy's critic, asked how well the call would go right now.

    The critic of a PPO skill policy estimates the return of running its skill from an observation, so it is
    high where the skill tends to succeed quickly and low where it does not. The raw value is in return
    units, so it is mapped onto (0, 1] through the card's `value_range`: the 5th and 95th percentiles of the
    critic's values at the starts of the policy's evaluation episodes, recorded by `embodia eval`.

    Only the next step is scored against the scene, as in SayCan: calls evaluated in hypothetical states
    deeper in a plan, calls with no learned policy (the provider's choice: also none for arguments the policy
    was never trained on) or no calibration, and `place` calls (whose goal names the object about to be held)
    get 1.0, so the language score alone decides among them.

    A policy trained with potential-based shaping has a critic that estimates V − Φ, which grows with the
    distance still to cover; `potential(call, shaping)` (from the experiments layer, which sees the scene)
    gives Φ now so that V itself is compared, as the card's `value_range` is.

    Args:
        provider: decides which calls have a learned policy (the same one that will run them).
        potential: Φ of the training shaping for a call in the current scene, given the card's `shaping`.
    """

    def __init__(self, provider: LearnedSkillProvider,
                 potential: Callable[[SkillCall, dict[str, float]], float] | None = None) -> None:
        self.provider = provider
        self.potential = potential
        self._obs: dict[str, np.ndarray] | None = None
        self._state: tuple[Any, ...] | None = None
        self._cache: dict[SkillCall, float] = {}

    def observe(self, obs: dict[str, np.ndarray], objects: Sequence[str], facts: Sequence[Sequence[str]]) -> None:
        """Remember the current observation and the symbolic state it shows (call before planning)."""
        state = SymbolicState.from_facts(facts, objects)
        self._obs = {k: np.asarray(v).copy() for k, v in obs.items()}
        self._state = _scene_key(state)
        self._cache = {}

    def affordance(self, call: SkillCall, state: SymbolicState) -> float:
        """The critic's estimate for `call`, mapped into (0, 1].

        1 (no opinion) for `place`, before `observe`, when `state` is not the scene last observed, or when the card
        records no value range.
        """
        if self._obs is None or _scene_key(state) != self._state or call.skill == "place":
            return 1.0
        if call not in self._cache:
            self._cache[call] = self._estimate(call)
        return self._cache[call]

    def _estimate(self, call: SkillCall) -> float:
        policy = self.provider.learned_policy(call)
        value_range = policy.card.meta.get("value_range") if policy is not None else None
        if policy is None or not value_range:
            return 1.0
        low, high = float(value_range[0]), float(value_range[1])
        shaping = policy.card.meta.get("shaping") or {}
        if not high > low or (any(shaping.values()) and self.potential is None):
            return 1.0
        value = policy.value(self._obs, call)
        if any(shaping.values()):
            value += self.potential(call, shaping)
        scaled = (value - low) / (high - low)
        return min(1.0, max(MIN_AFFORDANCE, scaled))


def _scene_key(state: SymbolicState) -> tuple[Any, ...]:
    """What a learned skill's value depends on: where things are, what is held, the drawer."""
    return state.locations, state.holding, state.drawer_open
