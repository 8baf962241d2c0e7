"""Chain-like start states: begin a task where a random scripted sub-chain leaves the kitchen.

Why: a skill policy trained only from `reset()` sees the arm at its home pose, the drawer as the task's
precondition sets it, and every object on the table. Inside a chain of instructions (CALVIN-style,
`embodia eval-chains`) the arm is wherever the last skill left it, blocks sit in the bowl, in the drawer,
on the plate or on each other, the drawer may be open, and a place starts with the object already in the
hand. A policy that never saw those states fails there (RESULTS.md: learned pick 191/353 inside chains).

The honest way to produce such states is to run what a chain runs. From a seeded plain reset this module
draws `k` (0..`max_prefix`) random instructions that are feasible in the scene as it is, executes each with
the scripted experts (`envs.experts`), then adds the setup the requested task needs, exactly as the planner
would: `open` before `close` is asked for a closed drawer, `close` before `open`, and for `place_in` /
`place_on` the drawer opened when the target is the drawer, then `pick` of the object, so the place starts
with the object held. The task then begins from that state (`set_task`: the oracle is anchored there).

Prefix instructions, each drawn uniformly from those feasible now (the same rule as `experiments.kitchen.chains`):
reach an object, the bowl or the plate; open or close the drawer (whichever applies); place a free
object in the bowl or the drawer, on the plate, or (blocks) on another free block on the table, run as
[open] + pick + place; push a free block on the table in a direction whose path is clear. Prefix skills run
to success, the expert's end or the task's horizon, whichever comes first. As in a CALVIN chain, the prefix
ends at its first failed instruction; the scene that failure left is kept (a retry starts from it) unless
it makes the requested task infeasible.

`crowd` (a reset option): when the task is a place into the bowl or the drawer or onto the plate, the start has
another object there already: after the prefix, if the target holds nothing, a free object is put there (open +
pick + place, by the same runner). Chains meet this often (a second block into the bowl, the mug onto a plate that
holds a block), the natural mix asks it rarely, and a student that never learned to put an object beside another
drops it on top (traced mid-chain: the yellow block left on the green one in the bowl, three tries out of three).
Without named arguments, a crowded start draws them among the feasible ones with such a target. For a place on the
table the crowded case is the object standing on something else: it is taken out of the bowl, off the plate or off
a block (put there first when it stands on the table), so that the place starts with it held over that support;
traced, the state place_on student shipped at 9a5afee let go there in 8 of the 13 such starts among its card's
100, against 1 of the 17 table places that started over free table. A stack (a block onto another block) has the
same crowded case, and the same failure was traced there: the block lifted off a support and let go over it.

An attempt whose final state does not make the requested task feasible (a physics fault, a failed pick,
the named object now in the drawer, ...) is discarded: the world is restored to the plain reset and a new
prefix drawn, up to `attempts` times; if all fail, the episode starts from the plain reset plus setup
(recorded as `fallback`). Every draw comes from the env's seeded `np_random`, so a seed gives the same
start bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from envs import predicates as pred
from envs.errors import InputError
from envs.experts import make_expert
from envs.physics_limits import SUBSTEPS, physics_fault
from envs.state import BLOCKS, MOVABLE, SceneState
from envs.task_choice import push_path_clear
from envs.tasks import DIRECTIONS, REACH_SURFACES, TaskSpec, check_success, valid_arguments


class HouseholdEnv(Protocol):
    """The parts of `envs.household.HouseholdEnv` a chain start drives.

    A protocol rather than an import: the env imports this module to build its starts, so importing the env
    back would make an import circle.
    """

    robot: Any
    sim: Any
    _state: SceneState

    def scene_state(self) -> SceneState:
        """The scene as it is now."""
        ...

    def save_state(self) -> Any:
        """A snapshot that `restore_state` returns to exactly."""
        ...

    def restore_state(self, snapshot: Any) -> None:
        """Return to a snapshot taken by `save_state`."""
        ...

START_MODES = ("reset", "chain")
MAX_PREFIX = 4
"""Up to 4 earlier instructions: the positions of a 5-instruction chain (`eval-chains --length 5`)."""
ATTEMPTS = 6
SETTLE_STEPS = 3
"""Control steps after an expert finishes before the next skill starts (the agent loop also lets go)."""
PLACE_TASKS = ("place_in", "place_on")
LIFTED_TARGETS = ("table", *BLOCKS)
"""Place targets whose crowded case is where the object starts: standing on a support and taken off it."""
CROWDABLE = ("bowl", "drawer", "plate", *LIFTED_TARGETS)
"""Place targets with a crowded case: the containers that can hold several objects side by side (a `crowd` start
puts one there first), the table and the blocks (the object starts on a support and is taken off it)."""


@dataclass
class ChainStart:
    """What was run before the episode's task began (in `info["chain_start"]` at reset)."""

    prefix: list[str] = field(default_factory=list)
    """Every skill executed, in order, as "name(args): ok|failed"."""
    attempts: int = 1
    fallback: bool = False
    steps: int = 0
    """Control steps simulated to build the start (the reset's cost)."""
    crowded_with: str | None = None
    """The object a `crowd` start put in the target before the task, or for the table the support it put the object
    on (None: none was needed, or not asked)."""

    def to_json(self) -> dict[str, Any]:
        """What built this start, as recorded in `info["chain_start"]`."""
        return {"prefix": list(self.prefix), "attempts": self.attempts, "fallback": self.fallback,
                "steps": self.steps, "crowded_with": self.crowded_with}


def check_start(start: str) -> str:
    """`start` if it is a known start mode, else a ValueError naming the choices."""
    if start not in START_MODES:
        raise InputError(f"unknown start mode {start!r}; expected one of: {', '.join(START_MODES)}")
    return start


# ------------------------------------------------------------------------------------ feasibility
def _facts(state: SceneState) -> set[tuple[str, ...]]:
    return {tuple(f) for f in pred.symbolic_facts(state)}


def _free_objects(facts: set[tuple[str, ...]]) -> list[str]:
    """Movables a gripper can take: not held, nothing on them, not in the drawer."""
    supports = {f[2] for f in facts if f[0] == "on"}
    return [x for x in MOVABLE if x not in supports and ("in", x, "drawer") not in facts
            and ("holding", x) not in facts]


def _push_clear(state: SceneState, name: str, direction: str) -> bool:
    layout = {n: (*state.position(n)[:2].tolist(), 0.0) for n in state.names}
    return push_path_clear(layout, name, direction)


def _place_targets(name: str, facts: set[tuple[str, ...]]) -> list[tuple[str, str, str]]:
    """(task, object, target) placements of `name` that are not already true (drawer ones need it open later)."""
    supports = {f[2] for f in facts if f[0] == "on"}
    options = [(t, name, c) for t, c in (("place_in", "bowl"), ("place_in", "drawer"), ("place_on", "plate"))
               if ("in" if t == "place_in" else "on", name, c) not in facts]
    if name in BLOCKS:
        options += [("place_on", name, y) for y in BLOCKS if y != name and y not in supports
                    and ("on", y, "table") in facts and ("on", name, y) not in facts]
    return options


def feasible_arguments(task: str, state: SceneState, after_setup: bool = False) -> list[tuple[str, ...]]:
    """Arguments of `task` it makes sense to ask for in `state` (in `valid_arguments` order).

    With `after_setup`, place tasks are judged as they will be after the setup (the object then held): the
    object must be free to pick now. Otherwise a place needs its object already held.
    """
    facts = _facts(state)
    held = state.held
    if task in ("open", "close"):
        wanted = ("closed", "drawer") if task == "open" else ("open", "drawer")
        return [("drawer",)] if (after_setup or (wanted in facts and held is None)) else []
    if task in PLACE_TASKS:
        candidates = _free_objects(facts) if after_setup else ([held] if held in MOVABLE else [])
        found = []
        for name in candidates:
            facts_now = facts - {("holding", name)}
            found += [(x, target) for t, x, target in _place_targets(name, facts_now) if t == task]
            if task == "place_on":
                found.append((name, "table"))
        allowed = set(valid_arguments(task))
        return [a for a in valid_arguments(task) if a in found and a in allowed]
    if held is not None and not after_setup:
        return []
    free = _free_objects(facts)
    if task in ("reach", "pick"):
        return [(x,) for x in MOVABLE if x in free]
    if task == "push":
        return [(x, d) for x in BLOCKS for d in DIRECTIONS
                if x in free and ("on", x, "table") in facts and _push_clear(state, x, d)]
    raise ValueError(f"unknown task {task!r}")


def is_feasible(spec: TaskSpec, state: SceneState) -> bool:
    """Does it make sense to start `spec` in `state` (place: object held; open: drawer closed; ...)?"""
    return tuple(spec.args) in feasible_arguments(spec.name, state)


# -------------------------------------------------------------------------------------- execution
def _advance(env: HouseholdEnv, action: np.ndarray) -> SceneState:
    """One control step of physics without computing an observation (no rendering: cheap in pixel modes)."""
    env.robot.apply_action([min(max(float(v), -1.0), 1.0) for v in action], env._state.ee_position)
    env.sim.step(SUBSTEPS)
    env._state = env.scene_state()
    return env._state


def run_skill(env: HouseholdEnv, spec: TaskSpec) -> tuple[bool, int]:
    """Run the scripted expert for `spec` from the scene as it is; returns (success, control steps)."""
    start = state = env.scene_state()
    env._state = state
    expert = make_expert(spec)
    steps = 0
    for _ in range(spec.horizon):
        state = _advance(env, expert.act(state))
        steps += 1
        if physics_fault(state):
            return False, steps
        if check_success(spec, start, state):
            break
        if expert.done:
            break
    for _ in range(SETTLE_STEPS):
        state = _advance(env, np.array([0.0, 0.0, 0.0, 1.0 if state.held is None else -1.0], np.float32))
        steps += 1
    return (not physics_fault(state)) and check_success(spec, start, state), steps


def _random_instruction(state: SceneState, rng: np.random.Generator) -> list[TaskSpec]:
    """One random feasible instruction as the skills a planner would run for it."""
    facts = _facts(state)
    drawer_open = ("open", "drawer") in facts
    free = _free_objects(facts)
    options: list[list[TaskSpec]] = [[TaskSpec("close" if drawer_open else "open", ("drawer",))]]
    options += [[TaskSpec("reach", (x,))] for x in (*free, *REACH_SURFACES)]
    for x in free:
        for task, name, target in _place_targets(x, facts):
            setup = [TaskSpec("open", ("drawer",))] if target == "drawer" and not drawer_open else []
            options.append([*setup, TaskSpec("pick", (name,)), TaskSpec(task, (name, target))])
        if x in BLOCKS and ("on", x, "table") in facts:
            options += [[TaskSpec("push", (x, d))] for d in DIRECTIONS if _push_clear(state, x, d)]
    return options[int(rng.integers(len(options)))]


def _setup(spec: TaskSpec, state: SceneState) -> list[TaskSpec]:
    """The skills a planner runs before `spec` in this scene (open/close the drawer, pick the object)."""
    facts = _facts(state)
    if spec.name == "open" and ("open", "drawer") in facts:
        return [TaskSpec("close", ("drawer",))]
    if spec.name == "close" and ("closed", "drawer") in facts:
        return [TaskSpec("open", ("drawer",))]
    if spec.name in PLACE_TASKS:
        name, target = spec.args
        steps = [TaskSpec("open", ("drawer",))] if target == "drawer" and ("closed", "drawer") in facts else []
        return steps if state.held == name else [*steps, TaskSpec("pick", (name,))]
    return []


def crowdable(spec: TaskSpec) -> bool:
    """Whether a `crowd` start applies to `spec`: a place into the bowl, the drawer, onto the plate, table, a block."""
    return spec.name in PLACE_TASKS and spec.args[-1] in CROWDABLE


def _support(name: str, facts: set[tuple[str, ...]]) -> str | None:
    """What `name` stands in or on besides the table and the drawer (the bowl, the plate, a block), else None."""
    for fact in facts:
        if len(fact) == 3 and fact[0] in ("in", "on") and fact[1] == name and fact[2] not in ("table", "drawer"):
            return fact[2]
    return None


def _crowded(spec: TaskSpec, facts: set[tuple[str, ...]]) -> bool:
    """Whether `spec` is crowded: its container holds another object, (table, block) its object stands on one."""
    name, target = spec.args
    if target in LIFTED_TARGETS:
        return _support(name, facts) is not None
    return bool(_occupants(target, facts, name))


def _occupants(target: str, facts: set[tuple[str, ...]], besides: str) -> list[str]:
    """Objects other than `besides` in (bowl, drawer) or on (plate) `target` now."""
    return [f[1] for f in facts if len(f) == 3 and f[0] in ("in", "on") and f[2] == target and f[1] != besides]


def _crowding(spec: TaskSpec, state: SceneState, rng: np.random.Generator) -> tuple[str | None, list[TaskSpec]]:
    """(object, skills) that put another free object in `spec`'s target first; (None, []) when one is there already.

    For the table and a block: (support, skills) that put the object to place on a support first (None when it
    stands on one); the support is neither the drawer nor the block it is to go on.

    Raises LookupError when no free object other than the one to place can go there.
    """
    facts = _facts(state)
    name, target = spec.args
    if _crowded(spec, facts):
        return None, []
    if target in LIFTED_TARGETS:
        supports = [(task, on) for task, _, on in _place_targets(name, facts) if on not in ("drawer", target)]
        if name not in _free_objects(facts) or not supports:
            raise LookupError(f"nothing to stand {name} on before it goes to the {target}")
        task, support = supports[int(rng.integers(len(supports)))]
        return support, [TaskSpec("pick", (name,)), TaskSpec(task, (name, support))]
    task = "place_on" if target == "plate" else "place_in"
    others = [x for x in _free_objects(facts) if x != name and (task, x, target) in _place_targets(x, facts)]
    if not others:
        raise LookupError(f"no free object to put in the {target} first")
    other = others[int(rng.integers(len(others)))]
    setup = [TaskSpec("open", ("drawer",))] if target == "drawer" and ("closed", "drawer") in facts else []
    return other, [*setup, TaskSpec("pick", (other,)), TaskSpec(task, (other, target))]


PrefixRunner = Callable[[Any, TaskSpec], tuple[bool, int]]
"""Runs one prefix skill in the env from the scene as it is; returns (success, control steps). The default is the
scripted expert (`run_skill`); the experiments layer can pass the shipped learned skills instead, so that starts
are where *learned* sub-chains leave the kitchen (what a learned skill meets mid-chain in `--skills learned`)."""


def _run_logged(env: HouseholdEnv, skill: TaskSpec, record: ChainStart, runner: PrefixRunner = run_skill) -> bool:
    ok, steps = runner(env, skill)
    record.steps += steps
    record.prefix.append(f"{skill}: {'ok' if ok else 'failed'}")
    return ok


def _run_prefix(env: HouseholdEnv, instructions: int, rng: np.random.Generator, record: ChainStart,
                runner: PrefixRunner = run_skill) -> None:
    """Run `instructions` random feasible instructions; like a CALVIN chain, stop at the first that fails."""
    for _ in range(instructions):
        for skill in _random_instruction(env.scene_state(), rng):
            if not _run_logged(env, skill, record, runner):
                return  # start from what the failure left


def build_chain_start(env: HouseholdEnv, spec: TaskSpec, rng: np.random.Generator, args_fixed: bool,
                      max_prefix: int = MAX_PREFIX, attempts: int = ATTEMPTS,
                      runner: PrefixRunner = run_skill, crowd: bool = False) -> tuple[TaskSpec, ChainStart]:
    """Drive `env` (just reset for `spec`) to a chain-like start for `spec`'s task; returns the task to run.

    `args_fixed`: the caller named the arguments, so they are kept (an attempt that makes them infeasible is
    redrawn); otherwise arguments are drawn among those feasible where the prefix ends. `runner` executes every
    skill before the task (the scripted experts by default), the setup included (open the drawer, pick the object to
    place): a place then starts from the grasp the runner's pick made. A failed setup makes the attempt infeasible,
    and it is redrawn. `crowd`: a place into a container starts with another object in it (see the module's
    docstring); an attempt where that cannot be done is redrawn, and the fallback start is not crowded.
    """
    if crowd and args_fixed and not crowdable(spec):
        raise InputError(f"a crowded start needs a place into the bowl, the drawer or onto the plate, the table "
                         f"or a block; got {spec}")
    if max_prefix < 0 or attempts < 1:
        raise InputError(f"max_prefix must be >= 0 and attempts >= 1, got {max_prefix} and {attempts}")
    snapshot = env.save_state()
    record = ChainStart()
    try:
        for attempt in range(attempts + 1):
            fallback = attempt == attempts
            if attempt:
                env.restore_state(snapshot)
            record.prefix, record.attempts, record.fallback, record.crowded_with = [], attempt + 1, fallback, None
            k = 0 if fallback else int(rng.integers(max_prefix + 1))
            _run_prefix(env, k, rng, record, runner)
            state = env.scene_state()
            if state.held is not None and not (spec.name in PLACE_TASKS and args_fixed and state.held == spec.args[0]):
                continue  # a failed place left something in the hand: not a state a chain continues from
            chosen = spec
            if not args_fixed:
                options = feasible_arguments(spec.name, state, after_setup=True)
                if crowd and not fallback:
                    options = [args for args in options if crowdable(TaskSpec(spec.name, args))]
                if not options and not fallback:
                    continue
                options = options or [spec.args]
                chosen = TaskSpec(spec.name, options[int(rng.integers(len(options)))])
            if crowd and not fallback and not _crowd(env, chosen, state, rng, record, runner):
                continue
            # the last resort's setup is scripted: the precondition must hold
            for skill in _setup(chosen, env.scene_state()):
                _run_logged(env, skill, record, run_skill if fallback else runner)
            if is_feasible(chosen, env.scene_state()) or fallback:
                return chosen, record
        raise AssertionError("unreachable: the fallback attempt always returns")
    finally:
        env.sim.remove_state(snapshot.bullet_state)


def _crowd(env: HouseholdEnv, spec: TaskSpec, state: SceneState, rng: np.random.Generator, record: ChainStart,
           runner: PrefixRunner) -> bool:
    """Crowd `spec`'s start with `runner`; whether it now is crowded.

    Another object goes into the target when it holds none; for the table or a block, the object goes onto a
    support first.
    """
    try:
        other, skills = _crowding(spec, state, rng)
    except LookupError:
        return False
    if other is not None and state.held is not None:
        return False  # the prefix left the object to place in the hand: no second pick before the task
    for skill in skills:
        if not _run_logged(env, skill, record, runner):
            return False
    record.crowded_with = other
    if other is None:
        return True
    after = env.scene_state()
    return after.held is None and _crowded(spec, _facts(after))
