"""Connects the knowledge store to the planner and the agent loop.

After every episode the loop's record goes into the store (plan, skill outcomes, final scene facts); before
every plan the planner gets a `PlannerMemory` built from the store: remembered object locations and drawer
state, per-skill success statistics (an affordance prior), and causal facts from studies turned into
"X hinders/helps skill" statements about the objects the study measured.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

from agent.loop import EpisodeRecord as LoopRecord
from agent.planner.memory import MemoryFact, PlannerMemory
from agent.planner.memory import SkillStats as PlannerSkillStats
from memory import EpisodeRecord, KnowledgeStore, StepOutcome, triples_from_scene_facts
from memory.records import CausalFact

OUTCOME_SKILLS = {"push_distance": "push", "push": "push", "pick_success": "pick", "grasp": "pick",
                  "drawer_opening": "open", "open_success": "open"}
"""Study outcomes and the skill whose success they measure."""


class MemoryBridge:
    """A `KnowledgeStore` seen as planner memory and as the loop's episode log."""

    def __init__(self, path: str | Path, encoder: Any = None) -> None:
        self.store = KnowledgeStore(path, encoder)

    def close(self) -> None:
        self.store.close()

    def record_episode(self, record: LoopRecord, metadata: dict[str, Any] | None = None) -> int:
        steps = [StepOutcome(s.call.skill, tuple(s.call.args), s.success, s.steps, s.reason) for s in record.steps]
        plan = record.plans[-1] if record.plans else None
        return self.store.add_episode(EpisodeRecord(
            record.instruction, plan=plan, steps=steps, final_facts=triples_from_scene_facts(record.final_facts),
            success=record.success,
            metadata=metadata or {}))

    def planner_memory(self) -> PlannerMemory:
        facts: list[MemoryFact] = []
        for obj, location in sorted(self.store.object_locations().items()):
            relation = "in" if location in ("bowl", "drawer") else "on"
            if location in ("gripper", "nothing"):
                continue
            facts.append(MemoryFact(obj, relation, location, 1.0))
        for fact in self.store.facts_about("drawer"):
            if fact.relation == "state" and fact.object in ("open", "closed") and fact.active:
                facts.append(MemoryFact("drawer", "state", fact.object, fact.confidence))
                break
        facts += [f for c in self.store.causal_facts() if (f := causal_to_planner_fact(c)) is not None]
        stats: dict[str, PlannerSkillStats] = {}
        for row in self.store.all_skill_stats():
            key = f"{row.skill}({', '.join(row.args)})" if row.args else row.skill
            stats[key] = PlannerSkillStats(row.successes, row.attempts)
        return PlannerMemory(tuple(facts), MappingProxyType(stats))


def causal_to_planner_fact(fact: CausalFact) -> MemoryFact | None:
    """("red_block.mass", "decreases", "push_distance", effect<0) → (red_block, hinders, push).

    The confidence grows with how clearly the interval excludes zero; effects whose interval
    straddles zero say nothing the planner should act on.
    """
    skill = OUTCOME_SKILLS.get(fact.object)
    if skill is None or "." not in fact.subject:
        return None
    if fact.ci_low is not None and fact.ci_high is not None and fact.ci_low <= 0.0 <= fact.ci_high:
        return None
    subject = fact.subject.split(".", 1)[0]
    relation = "hinders" if fact.effect < 0 else "helps"
    confidence = min(1.0, abs(fact.effect) / (abs(fact.effect) + 0.01))
    return MemoryFact(subject, relation, skill, round(confidence, 3))


def record_study_facts(path: str | Path, facts: list[dict[str, Any]], encoder: Any = None) -> int:
    """Write a causal study's `facts.json` records into the store at `path`; returns how many.

    A newer study's claim about the same (subject, object) pair supersedes the older one (store revision).
    """
    store = KnowledgeStore(path, encoder)
    try:
        for fact in facts:
            interval = fact.get("interval")
            store.add_causal_fact(fact["subject"], fact["relation"], fact["object"], float(fact["effect_size"]),
                                  None if interval is None else (float(interval[0]), float(interval[1])),
                                  level=float(fact.get("level", 0.95)), n=fact.get("n"),
                                  source=fact.get("provenance", "study"))
    finally:
        store.close()
    return len(facts)
