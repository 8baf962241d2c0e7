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
from agent.recall import EpisodeMemory
from memory import Episode, EpisodeRecord, KnowledgeStore, StepOutcome, triples_from_scene_facts
from memory.records import CausalFact
from memory.revision import new_uid

OUTCOME_SKILLS = {"push_distance": "push", "strike_distance": "push", "lift_height": "pick", "push": "push",
                  "pick_success": "pick", "grasp": "pick", "drawer_opening": "open", "open_success": "open"}
"""Study outcomes and the skill whose success they measure; for each, more is better for the skill.

push_distance (the scripted push) and strike_distance (how far a fixed impulse slides the object) measure how
far pushing moves it; lift_height (the scripted pick) how high a grasp lifts it. `OUTCOME_SCALE` is the effect
at which the planner's confidence in a finding reaches one half."""
OUTCOME_SCALE = 0.01
"""Metres: a 1 cm effect gives confidence 0.5, a 10 cm one 0.91."""
MOVABLE_OBJECTS = ("red_block", "green_block", "blue_block", "yellow_block", "mug")


class MemoryBridge:
    """A `KnowledgeStore` seen as planner memory and as the loop's episode log."""

    def __init__(self, path: str | Path, encoder: Any = None, create: bool = True) -> None:
        self.store = KnowledgeStore(path, encoder, create=create)

    def close(self) -> None:
        """Close the knowledge store's database connection."""
        self.store.close()

    def record_episode(self, record: LoopRecord, metadata: dict[str, Any] | None = None) -> int:
        """Store an episode: plan, skill outcomes, final facts, and what the agent's memory needs later.

        The metadata keeps the scene facts at the start, the goal the episode was judged against and the answer
        (for questions); each object the agent put somewhere also becomes a fact, e.g. (red_block, put_in,
        drawer), so "where did you put ..." can be answered from facts and retrieval as well as from episodes.
        """
        steps = [StepOutcome(s.call.skill, tuple(s.call.args), s.success, s.steps, s.reason) for s in record.steps]
        plan = record.plans[-1] if record.plans else None
        extra = {"start_facts": record.start_facts, "goal": record.goal, "goal_source": record.goal_source,
                 "answer": record.answer, "error": record.error}
        uid = new_uid()
        episode_id = self.store.add_episode(EpisodeRecord(
            record.instruction, plan=plan, steps=steps, final_facts=triples_from_scene_facts(record.final_facts),
            success=record.success, metadata={**extra, **(metadata or {})}, uid=uid))
        moves = episode_memory(record.to_json() | {"episode": episode_id}).moves()
        if moves:
            self.store.add_facts([(m.obj, f"put_{m.after[0]}", m.after[1]) for m in moves], source=f"episode:{uid}")
        return episode_id

    def episodes(self, instruction: str | None = None, recent: int = 50, retrieved: int = 5
                 ) -> tuple[EpisodeMemory, ...]:
        """Past episodes for the planner, oldest first.

        They are the newest `recent`, plus those retrieval finds nearest `instruction` (when the store has a text
        encoder).
        """
        chosen = {e.id: e for e in self.store.episodes(limit=recent)}
        if instruction and self.store.encoder is not None and self.store.counts().get("episodes", 0):
            for hit in self.store.retrieve(instruction, k=retrieved).episodes:
                chosen.setdefault(hit.item.id, hit.item)
        return tuple(episode_memory(_episode_json(e)) for _id, e in sorted(chosen.items()))

    def planner_memory(self, instruction: str | None = None) -> PlannerMemory:
        """Remembered locations and drawer state, causal facts, skill statistics and past episodes."""
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
        return PlannerMemory(tuple(facts), MappingProxyType(stats), self.episodes(instruction))


def causal_to_planner_fact(fact: CausalFact) -> MemoryFact | None:
    """Turn a causal finding into a fact the planner reads, with the finding in words as its evidence.

    For example ("red_block.mass", "decreases", "lift_height", -0.37 [-0.38, -0.37]) becomes
    (red_block.mass, hinders, pick(red_block)).

    The subject keeps the treatment variable; the target is the skill the outcome measures, on the
    treatment's object when that object is movable (a block's mass concerns picking that block) and on
    every call of the skill otherwise (``table.friction`` concerns every push). The planner reads a
    finding as "this variable, as it is here, hinders (or helps) that skill on that object", which holds
    when the study contrasted the scene's current value with a nominal one, as `embodia bench feedback`
    does. The confidence grows with the effect's size (`OUTCOME_SCALE`); findings whose interval
    straddles zero, and facts about outcomes no skill is measured by, say nothing the planner acts on.
    """
    skill = OUTCOME_SKILLS.get(fact.object)
    if skill is None or "." not in fact.subject or fact.effect == 0:
        return None
    if fact.ci_low is not None and fact.ci_high is not None and fact.ci_low <= 0.0 <= fact.ci_high:
        return None
    entity = fact.subject.split(".", 1)[0]
    target = f"{skill}({entity})" if entity in MOVABLE_OBJECTS else skill
    relation = "hinders" if fact.effect < 0 else "helps"
    confidence = min(1.0, abs(fact.effect) / (abs(fact.effect) + OUTCOME_SCALE))
    interval = "" if fact.ci_low is None or fact.ci_high is None else f" [{fact.ci_low:.4g}, {fact.ci_high:.4g}]"
    evidence = (f"{fact.subject} {fact.relation} {fact.object} by {abs(fact.effect):.4g}{interval}"
                + (f" (n={fact.n})" if fact.n else "") + f", {fact.source}")
    return MemoryFact(fact.subject, relation, target, round(confidence, 3), evidence)


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


def _episode_json(episode: Episode) -> dict[str, Any]:
    """A stored episode in the loop record's JSON shape (what `episode_memory` reads)."""
    meta = dict(episode.metadata)
    return {"instruction": episode.instruction, "goal": meta.get("goal", []),
            "steps": [{"skill": s.skill, "args": list(s.args), "success": s.success} for s in episode.steps],
            "start_facts": meta.get("start_facts", []), "final_facts": scene_facts_from_triples(episode.final_facts),
            "success": episode.success, "answer": meta.get("answer"), "episode": episode.id}


def episode_memory(data: dict[str, Any]) -> EpisodeMemory:
    """An `EpisodeMemory` from a loop record's JSON (`EpisodeRecord.to_json()`, plus an optional ``episode`` id)."""
    return EpisodeMemory.from_json({key: data.get(key) for key in ("instruction", "goal", "steps", "start_facts",
                                                                     "final_facts", "success", "answer", "episode")
                                    if data.get(key) is not None})


def scene_facts_from_triples(triples: Any) -> list[list[str]]:
    """The inverse of `triples_from_scene_facts` for the planning domain's facts (others are dropped)."""
    facts = []
    for subject, relation, obj, *_confidence in triples:
        if relation in ("in", "on"):
            facts.append([relation, subject, obj])
        elif relation == "state" and obj in ("open", "closed"):
            facts.append([obj, subject])
        elif subject == "gripper" and relation == "holding":
            facts.append(["gripper_empty"] if obj == "nothing" else ["holding", obj])
    return facts
