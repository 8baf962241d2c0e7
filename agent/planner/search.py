"""Symbolic search over the domain: A* to goal predicates, and SayCan-style step selection.

Plans come from search over the skills' preconditions and effects (`agent.symbolic`), so they are valid
by construction and reach every goal. Goals arrive in stages (one per instruction part); each stage is
planned from where the previous one ended, keeping earlier goals true unless a later stage overrides them.
Among the calls that keep a shortest plan possible, the one with the best language x affordance score
is taken, and every step's ranked candidates are recorded. The language score compares each call's text
with the instruction part being planned; scores within a factor of two count as ties, which go to the
call on the next goal in the order the person gave them.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace

from agent.errors import PlanningError
from agent.planner.affordance import AffordanceModel, LanguageScorer
from agent.planner.plan import ScoredCall, StepTrace
from agent.skills import Predicate, SkillCall
from agent.symbolic import SymbolicState, applicable_calls, successor

logger = logging.getLogger(__name__)

Goal = tuple[Predicate, ...]
TRANSIENT = ("holding", "near")
"""Predicates that only need to hold when their stage is reached; later stages may undo them freely."""


def _fluent(predicate: Predicate) -> tuple[str, ...]:
    """What a predicate constrains: the place of one object, or the drawer."""
    if predicate.predicate in ("open", "closed"):
        return ("drawer",)
    if predicate.predicate == "near":
        return ("near",)
    return ("object", predicate.args[0])


def _above(state: SymbolicState, obj: str) -> set[str]:
    """Everything resting on `obj`, directly or higher up the stack."""
    found: set[str] = set()
    todo = [obj]
    while todo:
        for upper in state.stacked_on(todo.pop()):
            if upper not in found:
                found.add(upper)
                todo.append(upper)
    return found


def heuristic(state: SymbolicState, goal: Goal) -> int:
    """A lower bound on the calls still needed.

    Every object that must move (its goal is unmet, or it sits on something that must be picked, pushed or
    covered) needs its own pick and place; other unmet goals need one call each; a closed drawer that must
    be reached needs an open; a held object in the way needs a place.
    """
    movers: set[str] = set()
    touched: set[str] = set()  # objects the gripper must take or push, so whatever is on them must go
    single, drawer_counted, drawer_needed = 0, False, False
    for predicate in goal:
        if state.holds(predicate):
            continue
        name, args = predicate.predicate, predicate.args
        if name in ("in", "on"):
            movers.add(args[0])
            touched.add(args[0])
            if args[1] != "table" and args[1] not in ("bowl", "drawer", "plate"):
                movers |= set(state.stacked_on(args[1])) - {args[0]}
            drawer_needed |= args[1] == "drawer" or state.inside_drawer(args[0]) or state.inside_drawer(args[1])
        elif name in ("holding", "pushed"):
            single += 1
            touched.add(args[0])
            drawer_needed |= state.inside_drawer(args[0])
        elif name == "near":
            single += 1  # only reach makes near true, and reach does nothing else
        elif name in ("open", "closed"):
            single += 1
            drawer_counted = True
    for obj in touched:
        movers |= _above(state, obj)
    total = single + sum(1 if state.holding == m else 2 for m in movers)
    if drawer_needed and not state.drawer_open and not drawer_counted:
        total += 1
    if state.holding is not None and state.holding not in movers and (movers - {state.holding} or touched):
        total += 1  # the held object must be put down before anything else is picked
    return total


@dataclass
class GoalSearch:
    """A* over symbolic states with memoised distances.

    Attributes:
        max_expansions: Give up (return None) after this many expanded states.
    """

    max_expansions: int = 20000
    _distances: dict[tuple[Hashable, Goal], int | None] = field(default_factory=dict, repr=False)

    def shortest(self, start: SymbolicState, goal: Goal) -> list[SkillCall] | None:
        """A shortest call sequence from `start` that makes every predicate of `goal` true, or None."""
        with_push = any(p.predicate == "pushed" for p in goal)
        with_reach = any(p.predicate == "near" for p in goal)

        def key(state: SymbolicState) -> Hashable:
            return (state.locations, state.holding, state.drawer_open,
                    state.near if with_reach else None, state.pushed if with_push else None)

        counter = itertools.count()
        frontier = [(heuristic(start, goal), 0, next(counter), start)]
        parents: dict[Hashable, tuple[Hashable, SkillCall] | None] = {key(start): None}
        best = {key(start): 0}
        expansions = 0
        while frontier and expansions < self.max_expansions:
            _f, cost, _n, state = heapq.heappop(frontier)
            if cost > best.get(key(state), cost):
                continue
            if all(state.holds(p) for p in goal):
                return _unwind(parents, key(state))
            expansions += 1
            for call in applicable_calls(state, with_push, with_reach):
                nxt = successor(state, call)
                nkey = key(nxt)
                if cost + 1 < best.get(nkey, cost + 2):
                    best[nkey] = cost + 1
                    parents[nkey] = (key(state), call)
                    heapq.heappush(frontier, (cost + 1 + heuristic(nxt, goal), cost + 1, next(counter), nxt))
        logger.debug("no plan for %s within %d expansions", [str(p) for p in goal], expansions)
        return None

    def distance(self, start: SymbolicState, goal: Goal) -> int | None:
        """Length of a shortest plan (memoised), or None when none was found.

        Every state along a shortest plan is remembered too: its distance is the rest of that plan.
        """
        memo_key = (_state_key(start), goal)
        if memo_key not in self._distances:
            path = self.shortest(start, goal)
            self._distances[memo_key] = None if path is None else len(path)
            state = start
            for done, call in enumerate(path or []):
                state = successor(state, call)
                self._distances.setdefault((_state_key(state), goal), len(path or []) - done - 1)
        return self._distances[memo_key]


def _state_key(state: SymbolicState) -> Hashable:
    return (state.locations, state.holding, state.drawer_open, state.near, state.pushed)


def _unwind(parents: dict[Hashable, tuple[Hashable, SkillCall] | None], end: Hashable) -> list[SkillCall]:
    calls: list[SkillCall] = []
    link = parents[end]
    while link is not None:
        previous, call = link
        calls.append(call)
        link = parents[previous]
    return calls[::-1]


@dataclass
class Decoded:
    """The outcome of `decode`: steps, which stage each serves, per-step scores and notes."""

    steps: list[SkillCall] = field(default_factory=list)
    step_stages: list[int] = field(default_factory=list)
    traces: list[StepTrace] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


NEAR_BEST = 0.5
"""Scores within this factor of the best count as equally good; the person's order then decides."""


def pick_best(candidates: list[ScoredCall], subgoal: Predicate) -> ScoredCall:
    """The useful candidate with the best score; near-ties go to calls on the next goal in the person's order."""
    useful = [c for c in candidates if c.useful]
    best = max(c.score for c in useful)
    near = [c for c in useful if c.score >= NEAR_BEST * best]
    on_next = [c for c in near if set(c.call.args) & set(subgoal.args)]
    return max(on_next or near, key=lambda c: c.score)


def stage_goal(stages: Sequence[Goal], index: int) -> Goal:
    """Stage `index` plus the earlier, non-transient goals that no later stage (up to it) overrides."""
    kept: list[Predicate] = []
    for earlier in range(index):
        later = {_fluent(p) for stage in stages[earlier + 1 : index + 1] for p in stage}
        kept += [p for p in stages[earlier] if p.predicate not in TRANSIENT and _fluent(p) not in later]
    current = list(stages[index])
    return tuple(current + [p for p in dict.fromkeys(kept) if p not in current])


class SayCanDecoder:
    """Chooses each step among the shortest-plan-preserving calls by language score x affordance."""

    def __init__(self, scorer: LanguageScorer, affordance: AffordanceModel, search: GoalSearch | None = None) -> None:
        self.scorer = scorer
        self.affordance = affordance
        self.search = search or GoalSearch()

    def decode(self, start: SymbolicState, stages: Sequence[Goal], contexts: Sequence[str], first: int = 0) -> Decoded:
        """Plan stages `first`.. in order from `start` (earlier ones count as done, so their goals are kept).

        Raises:
            PlanningError: naming the instruction part whose stage cannot be reached.
        """
        result = Decoded()
        state = start
        for index in range(first, len(stages)):
            stage = stages[index]
            goal = stage_goal(stages, index)
            if self.search.distance(state, goal) is None and goal != stage:
                dropped = ", ".join(str(p) for p in goal if p not in stage)
                result.notes.append(f"stage {index + 1} cannot keep {dropped}; planned without keeping it")
                goal = stage
            if self.search.distance(state, goal) is None:
                wanted = ", ".join(str(p) for p in stage)
                raise PlanningError(f"cannot reach {wanted} for {contexts[index]!r} in this scene", contexts[index])
            state = self._decode_stage(state, goal, index, contexts[index], result)
        return result

    def _mark_useful(self, state: SymbolicState, goal: Goal, remaining: int,
                     scored: list[ScoredCall]) -> list[ScoredCall]:
        """Check, best score first, which calls keep a shortest plan; stop below the near-best band.

        Calls scored too low to be chosen keep ``useful=None`` (not checked), which saves searches.
        """
        out = list(scored)
        floor = None
        for i in sorted(range(len(out)), key=lambda k: -out[k].score):
            if floor is not None and out[i].score < floor:
                break
            nxt = successor(state, out[i].call)
            useful = heuristic(nxt, goal) < remaining and self.search.distance(nxt, goal) == remaining - 1
            out[i] = replace(out[i], useful=useful)
            if useful and floor is None:
                floor = NEAR_BEST * out[i].score
        return out

    def _decode_stage(self, state: SymbolicState, goal: Goal, index: int, context: str, out: Decoded) -> SymbolicState:
        remaining = self.search.distance(state, goal)
        while remaining:
            with_push = any(p.predicate == "pushed" for p in goal)
            with_reach = any(p.predicate == "near" for p in goal)
            calls = applicable_calls(state, with_push, with_reach)
            subgoal = next(p for p in goal if not state.holds(p))
            language = self.scorer.scores(context, calls)
            scored = [ScoredCall(call, lang, self.affordance.affordance(call, state), None)
                      for call, lang in zip(calls, language, strict=True)]
            candidates = self._mark_useful(state, goal, remaining, scored)
            chosen = pick_best(candidates, subgoal)
            out.steps.append(chosen.call)
            out.step_stages.append(index)
            out.traces.append(StepTrace(chosen.call, index, tuple(candidates)))
            state = successor(state, chosen.call)
            remaining -= 1
        return state
