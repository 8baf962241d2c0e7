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
from agent.planner.affordance import (
    AffordanceModel,
    CausalAffordance,
    LanguageScorer,
    ProductAffordance,
    affordance_with_memory,
)
from agent.planner.memory import MemoryInput, PlannerMemory, as_memory
from agent.planner.plan import Plan, PlanTrace
from agent.planner.search import GoalSearch, SayCanDecoder
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
        if not isinstance(instruction, str):
            raise TypeError(f"instruction must be a string, got {type(instruction).__name__}")
        memory = as_memory(memory)
        trace = PlanTrace(planner=self.name)
        state = start_state(objects, facts, memory, trace.notes)
        affordance = affordance_with_memory(self.affordance, memory, causal=False)
        clauses = parse_instruction(instruction)
        if not clauses:
            phrase = instruction.strip()
            raise PlanningError(f"nothing to do in {phrase!r}: the instruction names no action or object", phrase)
        chooser = self._chooser(instruction, clauses, state,
                                affordance_with_memory(self.affordance, memory), trace)
        scene = Scene(state.objects, state, chooser)
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
        """The call the clause makes on `obj`: a push when it gives a direction or a push verb, a reach for
        a reach verb, a pick for everything else that moves an object (pick, put, stack, hide...)."""
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
