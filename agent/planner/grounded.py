"""The built-in planner: parse, ground with embeddings, search the domain, rank steps SayCan-style.

Example:
    >>> from perception.text import HashingTextEncoder
    >>> planner = GroundedPlanner(HashingTextEncoder())
    >>> [str(c) for c in planner.plan("put the yellow block in the drawer", OBJECTS)]
    ['open(drawer)', 'pick(yellow_block)', 'place(drawer)']
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from agent.errors import PlanningError
from agent.grounding import Grounder, Scene
from agent.interpret import Interpreter
from agent.parsing import Clause, parse_instruction
from agent.planner.affordance import AffordanceModel, LanguageScorer, affordance_with_memory
from agent.planner.memory import MemoryInput, PlannerMemory, as_memory
from agent.planner.plan import Plan, PlanTrace
from agent.planner.search import GoalSearch, SayCanDecoder
from agent.skills import MOVABLE, OBJECTS, Predicate, SkillCall
from agent.symbolic import SymbolicState
from perception.text import TextEncoder

logger = logging.getLogger(__name__)


class GroundedPlanner:
    """Instruction -> goal stages (rules for structure, embeddings for words) -> searched, scored plan.

    Args:
        encoder: Text encoder for grounding and language scores; MiniLM when None (loaded once per process).
        affordance: Feasibility of skill calls, e.g. a learned policy's value function; memory's skill
            statistics and causal facts are multiplied in per call of `plan`.
        max_expansions: Search budget per goal stage.
    """

    name = "grounded"

    def __init__(self, encoder: TextEncoder | None = None, affordance: AffordanceModel | None = None,
                 max_expansions: int = 20000) -> None:
        if encoder is None:
            from perception.text import default_text_encoder

            encoder = default_text_encoder("minilm")
        self.encoder = encoder
        self.affordance = affordance
        self.grounder = Grounder(encoder)
        self.scorer = LanguageScorer(encoder)
        self.max_expansions = max_expansions

    def plan(self, instruction: str, objects: Sequence[str] = OBJECTS, facts: Sequence[Sequence[str]] | None = None,
             memory: MemoryInput = None) -> Plan:
        """Plan `instruction` in a scene with `objects`, starting from `facts` (or the initial state).

        Raises:
            PlanningError: for phrases that cannot be grounded in the scene, empty or meaningless text,
                and goals no sequence of skills can reach.
        """
        if not isinstance(instruction, str):
            raise TypeError(f"instruction must be a string, got {type(instruction).__name__}")
        memory = as_memory(memory)
        trace = PlanTrace(planner=self.name)
        state = start_state(objects, facts, memory, trace.notes)
        affordance = affordance_with_memory(self.affordance, memory)
        clauses = parse_instruction(instruction)
        if not clauses:
            phrase = instruction.strip()
            raise PlanningError(f"nothing to do in {phrase!r}: the instruction names no action or object", phrase)
        scene = Scene(state.objects, state, self._chooser(instruction, state, affordance, trace))
        staged = subsume_holding(Interpreter(self.grounder, scene).stages(clauses))
        trace.groundings.extend(scene.groundings)
        trace.notes.extend(scene.notes)
        if not staged:
            raise PlanningError(f"nothing to do in {instruction.strip()!r}", instruction.strip())
        stages = tuple(tuple(goals) for _clause, goals in staged)
        contexts = [clause.text for clause, _goals in staged]
        return self._search(instruction, stages, contexts, state, affordance, trace)

    def replan(self, plan: Plan, facts: Sequence[Sequence[str]], objects: Sequence[str] | None = None,
               from_stage: int = 0, memory: MemoryInput = None) -> Plan:
        """A new plan for `plan`'s goal stages `from_stage`.. from the scene as it is now (`facts`).

        The embodied loop calls this after a failed step, with the stage of that step
        (``plan.step_stages[i]``); earlier stages count as done and their goals are kept.
        """
        if not 0 <= from_stage < max(len(plan.stages), 1):
            raise ValueError(f"from_stage must be in [0, {len(plan.stages)}), got {from_stage}")
        memory = as_memory(memory)
        trace = PlanTrace(planner=self.name, notes=[f"replanned from goal stage {from_stage + 1}"])
        present = objects if objects is not None else OBJECTS
        state = start_state(present, facts, memory, trace.notes)
        contexts = _stage_contexts(plan)
        affordance = affordance_with_memory(self.affordance, memory)
        return self._search(plan.instruction, plan.stages, contexts, state, affordance, trace, from_stage)

    def _search(self, instruction: str, stages: tuple[tuple[Predicate, ...], ...], contexts: list[str],
                state: SymbolicState, affordance: AffordanceModel, trace: PlanTrace, first: int = 0) -> Plan:
        decoder = SayCanDecoder(self.scorer, affordance, GoalSearch(self.max_expansions))
        decoded = decoder.decode(state, stages, contexts, first)
        trace.notes.extend(decoded.notes)
        trace.steps.extend(decoded.traces)
        trace.contexts = list(contexts)
        return Plan(instruction, stages, tuple(decoded.steps), tuple(decoded.step_stages), trace)

    def _chooser(self, instruction: str, state: SymbolicState, affordance: AffordanceModel, trace: PlanTrace):
        """SayCan for ambiguous references: rank options by language score x affordance of acting on them."""

        def choose(options: list[str], count: int, phrase: str) -> list[str]:
            calls = [SkillCall("pick", (o,)) if o in MOVABLE else SkillCall("reach", (o,)) for o in options]
            language = self.scorer.scores(instruction, calls)
            scores = [lang * affordance.affordance(call, state) for lang, call in zip(language, calls, strict=True)]
            ranked = sorted(range(len(options)), key=lambda i: -scores[i])
            trace.groundings.append({"phrase": phrase, "options": {o: round(s, 4) for o, s in zip(options, scores,
                                                                                                  strict=True)}})
            return [options[i] for i in sorted(ranked[:count])]

        return choose


def _stage_contexts(plan: Plan) -> list[str]:
    if len(plan.trace.contexts) == len(plan.stages):
        return list(plan.trace.contexts)
    return [", ".join(str(p) for p in stage) for stage in plan.stages]


def start_state(objects: Sequence[str], facts: Sequence[Sequence[str]] | None, memory: PlannerMemory,
                notes: list[str]) -> SymbolicState:
    """The state to plan from: current facts first, remembered locations where facts say nothing."""
    if isinstance(objects, str):
        raise TypeError("objects must be a sequence of object ids, got a single string")
    state = SymbolicState.initial(objects) if facts is None else SymbolicState.from_facts(facts, objects)
    known = set() if facts is None else {f[1] for f in facts if len(f) >= 2 and f[0] in ("in", "on", "holding")}
    for obj, (relation, support, confidence) in memory.locations().items():
        if obj in known or obj not in state.objects or obj not in MOVABLE or obj == state.holding:
            continue
        if support not in state.objects or support == obj:
            continue
        state = state.with_location(obj, (relation, support))
        notes.append(f"memory: {obj} {relation} {support} (confidence {confidence:.2f})")
    remembered = memory.drawer_state() if facts is None else None
    if remembered is not None and "drawer" in state.objects:
        state = replace(state, drawer_open=remembered == "open")
        notes.append(f"memory: the drawer is {remembered}")
    return state


def subsume_holding(staged: list[tuple[Clause, list[Predicate]]]) -> list[tuple[Clause, list[Predicate]]]:
    """Drop holding(x) when the next goal about x puts it somewhere ("pick up the mug and put it in the
    bowl" needs the mug in the bowl, not held at the end); drop stages left empty or repeating the last."""
    out: list[tuple[Clause, list[Predicate]]] = []
    for index, (clause, goals) in enumerate(staged):
        kept = [g for g in goals if not _placed_later(g, staged[index + 1 :])]
        if kept and (not out or out[-1][1] != kept):
            out.append((clause, kept))
    return out


def _placed_later(goal: Predicate, later: list[tuple[Clause, list[Predicate]]]) -> bool:
    if goal.predicate != "holding":
        return False
    obj = goal.args[0]
    following = next((g for _clause, goals in later for g in goals if obj in g.args), None)
    return following is not None and following.predicate in ("in", "on") and following.args[0] == obj
