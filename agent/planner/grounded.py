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
from dataclasses import dataclass, field, replace

from agent.errors import InputError, PlanningError
from agent.grounding import Grounder, Scene
from agent.interpret import Interpreter
from agent.parsing import Clause, check_readable, parse_instruction
from agent.planner.affordance import (
    AffordanceModel,
    CausalAffordance,
    LanguageScorer,
    ProductAffordance,
    affordance_with_memory,
)
from agent.planner.memory import (
    CAUSAL_RELATIONS,
    LOCATION_RELATIONS,
    STATE_RELATIONS,
    MemoryInput,
    PlannerMemory,
    as_memory,
)
from agent.planner.plan import Plan, PlanTrace
from agent.planner.search import GoalSearch, SayCanDecoder
from agent.recall import History, fill_unknowns
from agent.recollect import recollect
from agent.skills import DIRECTIONS, MOVABLE, OBJECTS, Predicate, SkillCall
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
        interpreted = self._interpret(instruction, objects, facts, memory)
        if interpreted.answer is not None:
            return Plan(instruction, (), (), (), interpreted.trace, answer=interpreted.answer)
        return self._search(instruction, interpreted.stages, interpreted.contexts, interpreted.state,
                            interpreted.affordance, interpreted.trace)

    def goal_stages(self, instruction: str, objects: Sequence[str] = OBJECTS,
                    facts: Sequence[Sequence[str]] | None = None, memory: MemoryInput = None
                    ) -> tuple[tuple[Predicate, ...], ...]:
        """The instruction's grounded goal (no search): what the embodied loop judges success against.

        Any planner's plan (an LLM's included) is checked against this, never against its own goal. A question
        has no goal (an empty tuple).

        Raises:
            PlanningError: as `plan` does for an instruction that cannot be grounded.
        """
        return self._interpret(instruction, objects, facts, memory).stages

    def _interpret(self, instruction: str, objects: Sequence[str], facts: Sequence[Sequence[str]] | None,
                   memory: MemoryInput) -> _Interpreted:
        if not isinstance(instruction, str):
            raise TypeError(f"instruction must be a string, got {type(instruction).__name__}")
        check_readable(instruction)
        memory = as_memory(memory)
        trace = PlanTrace(planner=self.name)
        state = start_state(objects, facts, memory, trace.notes)
        affordance = affordance_with_memory(self.affordance, memory, causal=False)
        chooser = self._chooser(instruction, _clauses_or_none(instruction), state,
                                affordance_with_memory(self.affordance, memory), trace)
        scene = Scene(state.objects, state, chooser, notes=list(trace.notes), history=History(memory.episodes))
        recalled = recollect(instruction, self.grounder, scene)
        result = _Interpreted(state, affordance, trace)
        if recalled.answer is not None or recalled.stages:
            trace.groundings.extend(scene.groundings)
            trace.notes[:] = _merged_notes(scene.notes, trace.notes)
            result.answer, result.stages, result.contexts = recalled.answer, recalled.stages, recalled.contexts
            return result
        clauses = parse_instruction(recalled.text)
        if not clauses:
            phrase = instruction.strip()
            raise PlanningError(f"nothing to do in {phrase!r}: the instruction names no action or object", phrase)
        staged = subsume_holding(Interpreter(self.grounder, scene).stages(clauses))
        trace.groundings.extend(scene.groundings)
        trace.notes[:] = _merged_notes(scene.notes, trace.notes)
        if not staged:
            raise PlanningError(f"nothing to do in {instruction.strip()!r}", instruction.strip())
        result.stages = tuple(tuple(goals) for _clause, goals in staged)
        result.contexts = [clause.text for clause, _goals in staged]
        return result

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
        affordance = affordance_with_memory(self.affordance, memory, causal=False)
        return self._search(plan.instruction, plan.stages, contexts, state, affordance, trace, from_stage)

    def _search(self, instruction: str, stages: tuple[tuple[Predicate, ...], ...], contexts: list[str],
                state: SymbolicState, affordance: AffordanceModel, trace: PlanTrace, first: int = 0) -> Plan:
        decoder = SayCanDecoder(self.scorer, affordance, GoalSearch(self.max_expansions))
        decoded = decoder.decode(state, stages, contexts, first)
        trace.notes.extend(decoded.notes)
        trace.steps.extend(decoded.traces)
        trace.contexts = list(contexts)
        return Plan(instruction, stages, tuple(decoded.steps), tuple(decoded.step_stages), trace)

    def _chooser(self, instruction: str, clauses: list[Clause], state: SymbolicState, affordance: AffordanceModel,
                 trace: PlanTrace):
        """SayCan for ambiguous references: rank options by language score x affordance of acting on them.

        The language score compares the instruction with picking (or reaching) each option, as always;
        the affordance is that of the call the option's clause makes on it (``push(x, left)`` for "push a
        block to the left", ``pick(x)`` for "put a block in the bowl"), so evidence about one skill
        never steers a choice made for another. Causal facts count only here: they decide which object
        when the instruction leaves the choice, and the trace says which facts did.
        """

        def choose(options: list[str], count: int, phrase: str) -> list[str]:
            calls = [SkillCall("pick", (o,)) if o in MOVABLE else SkillCall("reach", (o,)) for o in options]
            language = self.scorer.scores(instruction, calls)
            clause = next((c for c in clauses if phrase.lower() in c.text.lower()), None)
            acting = [self._acting_call(clause, o, call) for o, call in zip(options, calls, strict=True)]
            scores = [lang * affordance.affordance(call, state) for lang, call in zip(language, acting, strict=True)]
            ranked = sorted(range(len(options)), key=lambda i: -scores[i])
            trace.groundings.append({"phrase": phrase, "options": {o: round(s, 4) for o, s in zip(options, scores,
                                                                                                  strict=True)}})
            self._note_causal(affordance, acting, trace)
            return [options[i] for i in sorted(ranked[:count])]

        return choose

    def _acting_call(self, clause: Clause | None, obj: str, default: SkillCall) -> SkillCall:
        """The call the clause makes on `obj`.

        A push when it gives a direction or a push verb, a reach for a reach verb, a pick for everything
        else that moves an object (pick, put, stack, hide...).
        """
        if obj not in MOVABLE or clause is None:
            return default
        directions = [c.word for c in clause.chunks if c.kind == "dir"]
        label = self.grounder.verb(clause.verb).label if clause.verb else "unknown"
        if directions or label == "push":
            direction = next((d for d in directions if d in DIRECTIONS), DIRECTIONS[0])
            return SkillCall("push", (obj, direction))
        if label == "reach":
            return SkillCall("reach", (obj,))
        return SkillCall("pick", (obj,))

    @staticmethod
    def _note_causal(affordance: AffordanceModel, calls: list[SkillCall], trace: PlanTrace) -> None:
        models = affordance.models if isinstance(affordance, ProductAffordance) else [affordance]
        for model in models:
            if not isinstance(model, CausalAffordance):
                continue
            for call in calls:
                for fact in model.relevant(call):
                    note = (f"causal: {fact.subject} {fact.relation} {fact.object} (confidence {fact.confidence:.2f}"
                            + (f"; {fact.evidence}" if fact.evidence else "") + f") -> affordance of {call} "
                            f"{model.affordance(call, SymbolicState.initial()):.2f}")
                    if note not in trace.notes:
                        trace.notes.append(note)


@dataclass
class _Interpreted:
    """An instruction read in a scene: its goal stages (or an answer), and what searching for a plan needs."""

    state: SymbolicState
    affordance: AffordanceModel
    trace: PlanTrace
    stages: tuple[tuple[Predicate, ...], ...] = ()
    contexts: list[str] = field(default_factory=list)
    answer: str | None = None


def _merged_notes(scene_notes: list[str], trace_notes: list[str]) -> list[str]:
    """The scene's notes (it started from a copy of the trace's) plus those the chooser added to the trace."""
    return [*scene_notes, *(note for note in trace_notes if note not in scene_notes)]


def _clauses_or_none(instruction: str) -> list[Clause]:
    """The instruction's clauses for the chooser's causal scoring (none when only recollection can read it)."""
    try:
        return parse_instruction(instruction)
    except PlanningError:
        return []


def _stage_contexts(plan: Plan) -> list[str]:
    if len(plan.trace.contexts) == len(plan.stages):
        return list(plan.trace.contexts)
    return [", ".join(str(p) for p in stage) for stage in plan.stages]


def start_state(objects: Sequence[str], facts: Sequence[Sequence[str]] | None, memory: PlannerMemory,
                notes: list[str]) -> SymbolicState:
    """The state to plan from: current facts first, remembered locations only for objects they leave unseen.

    Raises:
        ValueError: for a fact or a remembered fact outside the planning domain (an unknown predicate).
    """
    if isinstance(objects, str):
        raise TypeError("objects must be a sequence of object ids, got a single string")
    check_memory_relations(memory)
    present = [*objects, *(a for f in facts or () for a in list(f)[1:] if a in OBJECTS)]
    remembered = {obj: loc for obj, loc in memory.locations().items() if obj in MOVABLE}
    filled, filled_notes = fill_unknowns(facts or [], present, remembered)
    notes.extend(filled_notes)
    if facts is None and not filled_notes:
        state = SymbolicState.initial(objects)
    else:
        state = SymbolicState.from_facts(filled, objects)
    unseen = [f[1] for f in filled if len(f) == 2 and f[0] == "unknown"]
    if unseen and "drawer" in state.objects and not state.drawer_open:
        notes.append(f"look: {', '.join(unseen)} not seen and not remembered; assumed in the closed drawer (the one "
                     "place the cameras cannot see), so a plan that needs it opens the drawer first")
    remembered_drawer = memory.drawer_state() if facts is None else None
    if remembered_drawer is not None and "drawer" in state.objects:
        state = replace(state, drawer_open=remembered_drawer == "open")
        notes.append(f"memory: the drawer is {remembered_drawer}")
    return state


def check_memory_relations(memory: PlannerMemory) -> None:
    """Refuse remembered facts whose relation the planner does not know (instead of silently ignoring them)."""
    known = {*LOCATION_RELATIONS, *STATE_RELATIONS, *CAUSAL_RELATIONS}
    for fact in memory.facts:
        if fact.relation not in known:
            raise InputError(f"unknown relation {fact.relation!r} in remembered fact ({fact.subject}, "
                             f"{fact.relation}, {fact.object}); expected one of {', '.join(sorted(known))}")


def subsume_holding(staged: list[tuple[Clause, list[Predicate]]]) -> list[tuple[Clause, list[Predicate]]]:
    """Drop goals that a later stage makes moot.

    holding(x) goes when the next goal about x puts it somewhere ("pick up the mug and put it in the bowl"
    needs the mug in the bowl, not held at the end); stages left empty or repeating the last one go too.
    """
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
