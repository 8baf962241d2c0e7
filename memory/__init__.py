"""Remembering and continuing to learn: the SQLite knowledge store and the continual-learning strategies.

The planner's view of the store:

- `KnowledgeStore.object_locations()` — where each object was last seen (earlier episodes included);
- `KnowledgeStore.skill_stats(skill, args)` — Beta-posterior success rates, an affordance prior;
- `KnowledgeStore.causal_facts(subject)` — effects measured by causal studies;
- `KnowledgeStore.retrieve(query, k)` — the facts, episodes and causal facts nearest a sentence.

The agent loop writes with `add_episode(EpisodeRecord(...))`; studies with `add_causal_fact`; anyone with
`add_facts`. Text encoders are taken by protocol (`memory.index.TextEncoder`); memory never imports perception.
"""

from memory.index import EmbeddingIndex, TextEncoder
from memory.records import (
    DEFAULT_FUNCTIONAL_SLOTS,
    CausalFact,
    Episode,
    EpisodeRecord,
    Fact,
    Hit,
    Provenance,
    Retrieval,
    SkillStats,
    StepOutcome,
    Triple,
    triples_from_scene_facts,
)
from memory.schema import SCHEMA_VERSION, StoreCorruptError
from memory.store import DEFAULT_PATH, KnowledgeStore
from memory.transfer import export_jsonl, import_jsonl

__all__ = [
    "DEFAULT_FUNCTIONAL_SLOTS",
    "DEFAULT_PATH",
    "SCHEMA_VERSION",
    "CausalFact",
    "EmbeddingIndex",
    "Episode",
    "EpisodeRecord",
    "Fact",
    "Hit",
    "KnowledgeStore",
    "Provenance",
    "Retrieval",
    "SkillStats",
    "StepOutcome",
    "StoreCorruptError",
    "TextEncoder",
    "Triple",
    "export_jsonl",
    "import_jsonl",
    "triples_from_scene_facts",
]
