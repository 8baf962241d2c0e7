"""Builds the pieces a command needs from typed options: encoder, planner, skill policies, affordances, memory.

Commands add the shared flags with `add_agent_arguments`, turn the parsed namespace into an `AgentOptions`
once (`AgentOptions.from_args`), and pass that on; nothing below the command line reads argparse.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from experiments.common.errors import InputError

if TYPE_CHECKING:  # the command modules import this one while building the parser: keep it light
    from agent.planner import GroundedPlanner
    from agent.planner.llm import LLMPlanner
    from agent.policy import LearnedSkillProvider, LearnedValueAffordance
    from envs.household import HouseholdEnv
    from experiments.kitchen.memory_bridge import MemoryBridge
    from experiments.kitchen.world import KitchenWorld, ScriptedProvider
    from perception.text import TextEncoder

PLANNERS = ("grounded", "llm")
SKILL_MODES = ("scripted", "learned", "auto")
PERCEPTION_MODES = ("oracle", "learned")
SKILL_OBSERVATIONS = ("state", "rgbd_touch")
LEARNED_RETRIES = ("repeat", "sample")
VISUOMOTOR_IMAGE_SIZE = 64
"""Camera size of the kitchen when visuomotor skills act (what the shipped rgbd_touch policies were trained on)."""


def llm_timeout(text: str) -> float:
    """Argparse type of --llm-timeout: a finite number of seconds > 0 (anything else exits 2)."""
    from agent.planner.llm import validate_timeout

    try:
        return validate_timeout(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    """--llm-url/--llm-model/--llm-dir/--llm-timeout, shared by every command that plans."""
    parser.add_argument("--llm-url", default=None, help="OpenAI-compatible chat endpoint (with --planner llm); "
                        "an API key is read from $EMBODIA_LLM_API_KEY or $OPENAI_API_KEY and never logged")
    parser.add_argument("--llm-model", default=None, help="model name at --llm-url")
    parser.add_argument("--llm-dir", default=None, help="local Hugging Face causal-LM directory (with --planner llm)")
    parser.add_argument("--llm-timeout", type=llm_timeout, default=30.0,
                        help="total seconds per LLM request (connect + answer), a finite number > 0")


def add_planner_arguments(parser: argparse.ArgumentParser) -> None:
    """--planner/--encoder and the LLM flags."""
    parser.add_argument("--planner", choices=PLANNERS, default="grounded", help="planner back end")
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm",
                        help="text encoder used for grounding (hashing: fast, for tests only)")
    add_llm_arguments(parser)


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that build an agent (planner, skills, replans, memory) to a sub-command's parser."""
    add_planner_arguments(parser)
    parser.add_argument("--skills", choices=SKILL_MODES, default="auto",
                        help="skill policies: auto (the default): the shipped learned policy where its evaluation "
                             "from chain starts reached 85%% (the lower end of its 95%% interval), the scripted expert "
                             "otherwise and for calls the learned policy failed in the episode (100 chains, places "
                             "judged at rest: 4.89; experts alone 4.80); learned: every shipped learned policy; "
                             "scripted: the experts only")
    parser.add_argument("--skill-obs", choices=SKILL_OBSERVATIONS, default=None,
                        help="which shipped learned skills act (with --skills learned/auto): state policies "
                             "(agent/skill_policies) or visuomotor ones that see only the cameras, touch and "
                             "proprioception (agent/skill_policies/rgbd_touch); skills without one run the expert. "
                             "Default: rgbd_touch with --perception learned (no oracle anywhere), else state")
    parser.add_argument("--learned-retry", choices=LEARNED_RETRIES, default="repeat",
                        help="how a learned skill retries a call it failed in the episode (matters with --skills "
                             "learned): repeat its mean actions, or sample them from its Gaussian, seeded")
    parser.add_argument("--max-replans", type=int, default=2, help="replans allowed after failed steps")
    parser.add_argument("--memory", default=None, help="knowledge store (SQLite file) the planner reads and writes")
    parser.add_argument("--perception", choices=PERCEPTION_MODES, default="oracle",
                        help="where facts and success checks come from: the simulator's oracle, or the scene "
                             "estimator reading cameras and touch (the oracle then only scores the report)")
    parser.add_argument("--estimator", default=None,
                        help="scene-estimator weights for --perception learned (default: the shipped one)")
    parser.add_argument("--no-look-again", dest="look_again", action="store_false",
                        help="end a place when its test first holds (the object at rest where it should be), "
                             "without the second look after the hand has risen (the default looks again)")


@dataclass(frozen=True)
class AgentOptions:
    """How to build the agent: planner back end, text encoder, skill policies, replans and memory."""

    planner: str = "grounded"
    """"grounded" or "llm" (see `PLANNERS`)."""
    encoder: str = "minilm"
    """Text encoder for grounding: "minilm" or "hashing" (fast, for tests)."""
    llm_url: str | None = None
    """OpenAI-compatible chat endpoint (with planner "llm")."""
    llm_model: str | None = None
    """Model name at `llm_url`."""
    llm_dir: str | None = None
    """Local Hugging Face causal-LM directory (with planner "llm")."""
    llm_timeout: float = 30.0
    """Total seconds per LLM request (connect + answer)."""
    skills: str = "auto"
    """Skill policies: "auto" (learned where good enough, the expert otherwise), "learned" or "scripted"."""
    skill_obs: str | None = None
    """Which learned skills: "state" (agent/skill_policies) or "rgbd_touch" (agent/skill_policies/rgbd_touch);
    None picks by perception (see `skill_observations`)."""
    learned_retry: str = "repeat"
    """How a learned skill retries a call it failed: "repeat" its mean actions or "sample" them (seeded)."""
    max_replans: int = 2
    """Replans allowed after failed steps."""
    memory: str | None = None
    """Knowledge store (SQLite file) the planner reads and writes; None for none."""
    perception: str = "oracle"
    """Where facts and success checks come from: "oracle" or "learned" (the scene estimator)."""
    estimator: str | None = None
    """Scene-estimator weights for perception "learned" (None: the shipped ones)."""
    look_again: bool = True
    """Judge a place again once the hand has risen and the object rests (`world.KitchenWorld`)."""

    def __post_init__(self) -> None:
        if self.planner not in PLANNERS:
            raise InputError(f"unknown planner {self.planner!r}; expected one of {', '.join(PLANNERS)}")
        if self.skills not in SKILL_MODES:
            raise InputError(f"unknown skills mode {self.skills!r}; expected one of {', '.join(SKILL_MODES)}")
        if self.perception not in PERCEPTION_MODES:
            raise InputError(f"unknown perception mode {self.perception!r}; expected one of "
                             f"{', '.join(PERCEPTION_MODES)}")
        if self.learned_retry not in LEARNED_RETRIES:
            raise InputError(f"unknown learned retry {self.learned_retry!r}; expected one of "
                             f"{', '.join(LEARNED_RETRIES)}")
        if self.skill_obs is not None and self.skill_obs not in SKILL_OBSERVATIONS:
            raise InputError(f"unknown skill observation set {self.skill_obs!r}; expected one of "
                             f"{', '.join(SKILL_OBSERVATIONS)}")

    @property
    def skill_observations(self) -> str:
        """The learned skills' observation set: as asked, else rgbd_touch when perception is learned.

        A perceiving agent should not act on the simulator's object rows either, and the perceived kitchen
        renders only cameras and touch, which the state policies cannot read.
        """
        if self.skill_obs is not None:
            return self.skill_obs
        return "rgbd_touch" if self.perception == "learned" else "state"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AgentOptions:
        """The options from a namespace parsed with `add_agent_arguments` (flags it lacks keep their default)."""
        defaults = cls()
        return cls(**{name: getattr(args, name, getattr(defaults, name)) for name in cls.__dataclass_fields__})


def make_world(options: AgentOptions, record: bool = False, gui: bool = False) -> tuple[HouseholdEnv, KitchenWorld]:
    """The kitchen env and its `SkillWorld` view: oracle facts, or perceived ones with perception "learned".

    Raises:
        ValueError: for `gui` with perception "learned" (the perceived world renders its own cameras).
    """
    if options.perception == "learned":
        if gui:
            raise InputError("--gui works with --perception oracle only, got --perception learned")
        from experiments.kitchen.perceived_world import open_perceived_world

        return open_perceived_world(options.estimator, record=record, look_again=options.look_again)
    from envs.household import HouseholdEnv
    from experiments.kitchen.world import KitchenWorld

    # Visuomotor skills read the cameras and touch, so the kitchen renders them; the oracle still gives the facts.
    cameras = ({"obs_mode": "rgbd_touch", "image_size": VISUOMOTOR_IMAGE_SIZE,
                "front_image_size": visuomotor_front_size()}
               if options.skill_observations == "rgbd_touch" and options.skills != "scripted" else {})
    env = HouseholdEnv(task="none", render_mode="human" if gui else ("rgb_array" if record else None), **cameras)
    return env, KitchenWorld(env, record=record, look_again=options.look_again)


def visuomotor_front_size() -> int:
    """The front camera's side the shipped rgbd_touch skills need: the finest any of them reads.

    The perceived-state skills' estimator reads a 128-px front view; the 64-px visuomotor policies get it
    averaged down (`agent.policy.fit_image`).
    """
    from agent.policy import VISUOMOTOR_DIR, find_cards, read_observation_space

    sides = [read_observation_space(card).get("rgb_front", (VISUOMOTOR_IMAGE_SIZE,))[0]
             for card in find_cards(VISUOMOTOR_DIR).values()]
    return max([VISUOMOTOR_IMAGE_SIZE, *sides])


def make_encoder(kind: str) -> TextEncoder:
    """The text encoder named `kind` ("minilm" or "hashing")."""
    from perception.text import default_text_encoder

    return default_text_encoder(kind)


def make_planner(options: AgentOptions, encoder: TextEncoder | None = None,
                 affordance: LearnedValueAffordance | None = None) -> GroundedPlanner | LLMPlanner:
    """The planner named by --planner (the LLM one falls back to the grounded planner on bad output)."""
    from agent.planner import GroundedPlanner

    encoder = encoder or make_encoder(options.encoder)
    grounded = GroundedPlanner(encoder, affordance=affordance)
    if options.planner == "grounded":
        return grounded
    return make_llm_planner(grounded, url=options.llm_url, model=options.llm_model, model_dir=options.llm_dir,
                            timeout=options.llm_timeout)


def make_llm_planner(fallback: Any, url: str | None = None, model: str | None = None, model_dir: Any = None,
                     timeout: float = 30.0) -> LLMPlanner:
    """`LLMPlanner` over a local model directory (`model_dir`) or an OpenAI-compatible server (`url` + `model`).

    The server's API key comes from $EMBODIA_LLM_API_KEY or $OPENAI_API_KEY (sent as a bearer header, never
    logged); `fallback` grounds each instruction and plans whenever the model's answer is not used.
    """
    from agent.planner.llm import LLMPlanner, OpenAIChatClient, api_key_from_env, validate_timeout

    timeout = validate_timeout(timeout)
    if model_dir:
        from experiments.kitchen.llm_local import HFChatClient

        return LLMPlanner(HFChatClient(model_dir), fallback)
    if not (url and model):
        raise InputError("--planner llm needs --llm-url and --llm-model (or --llm-dir for a local model)")
    return LLMPlanner(OpenAIChatClient(url, model, timeout=timeout, api_key=api_key_from_env()), fallback)


def make_provider(options: AgentOptions, world: KitchenWorld) -> ScriptedProvider | LearnedSkillProvider:
    """Skill policies per --skills: scripted experts, learned PPO policies, or learned where good enough."""
    from experiments.kitchen.world import ScriptedProvider

    scripted = ScriptedProvider(world)
    if options.skills == "scripted":
        return scripted
    from agent.policy import DEFAULT_DIR, VISUOMOTOR_DIR, LearnedSkillProvider

    policy_dir = VISUOMOTOR_DIR if options.skill_observations == "rgbd_touch" else DEFAULT_DIR
    # Perceived-state skills read the scene through the same estimator as the perceiving world, when there is one.
    estimator = getattr(world, "estimator", None)
    provider = LearnedSkillProvider(fallback=scripted.policy_for, mode=options.skills, policy_dir=policy_dir,
                                    retry=options.learned_retry, estimator=estimator,
                                    judged_by_perception=options.perception == "learned")
    check_observations(provider, world.env.observation_space)
    return provider


def check_observations(provider: LearnedSkillProvider, space: Any) -> None:
    """Refuse, before acting, a learned policy that reads keys or image sizes the kitchen does not give."""
    from agent.policy import image_fits, read_observation_space

    for task, card in provider.cards.items():
        needed = read_observation_space(card)
        missing = sorted(set(needed) - set(space.spaces) - {"goal"})
        wrong = sorted(k for k in needed if k in space.spaces and not image_fits(space[k].shape, needed[k]))
        if missing or wrong:
            raise InputError(f"the learned {task} policy ({card.path}) reads {sorted(needed)} with shapes "
                             f"{ {k: list(v) for k, v in needed.items()} }; the kitchen gives "
                             f"{ {k: list(v.shape) for k, v in space.spaces.items()} } (missing {missing}, other "
                             f"shape {wrong}); pick the matching --skill-obs")


def make_value_affordance(provider: ScriptedProvider | LearnedSkillProvider, world: KitchenWorld
                          ) -> LearnedValueAffordance | None:
    """SayCan affordances from the learned policies' critics, or None when every skill is scripted."""
    from agent.policy import LearnedSkillProvider, LearnedValueAffordance

    if not isinstance(provider, LearnedSkillProvider):
        return None
    return LearnedValueAffordance(provider, potential=world.shaping_potential)


def open_memory(options: AgentOptions) -> MemoryBridge | None:
    """The knowledge store named by --memory, wrapped for the planner and the loop (None without it)."""
    if not options.memory:
        return None
    from experiments.kitchen.memory_bridge import MemoryBridge

    return MemoryBridge(options.memory, make_encoder(options.encoder))
