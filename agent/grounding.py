"""Grounding noun phrases and action words in the scene with text embeddings.

Object and action words are classified by nearest exemplar in embedding space: the phrase's content
words ("coffee cup", "snatch") are embedded with the planner's `TextEncoder` and compared with the
exemplars of every object type and skill in `agent.lexicon`, *and* with exemplars of things that are not
in the scene ("fridge", "banana") or actions the robot does not have ("eat"). The nearest exemplar wins;
a negative exemplar or a weak match is a refusal. Colours and grammar stay rule-based (see
`agent.lexicon` for why). `Discourse` resolves pronouns against what the instruction mentioned before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from agent import lexicon as lx
from agent.chunking import NounPhrase, lemma
from agent.errors import PlanningError
from agent.recall import History
from agent.skills import BLOCK_COLOURS, CONTAINERS, MOVABLE, OBJECTS, PLACE_TARGETS
from agent.symbolic import SymbolicState
from perception.text import TextEncoder

SLOTS: dict[str, Callable[[str], bool]] = {
    "movable": lambda o: o in MOVABLE,
    "container": lambda o: o in CONTAINERS,
    "surface": lambda o: o in PLACE_TARGETS and o not in CONTAINERS,
    "target": lambda o: o in PLACE_TARGETS,
    "drawer": lambda o: o == "drawer",
    "any": lambda o: o in OBJECTS,
}
"""What an argument position accepts; pronouns resolve to the latest mention that fits."""
Chooser = Callable[[list[str], int, str], list[str]]
"""Picks `count` objects among equally good options (the planner ranks them SayCan-style)."""


@dataclass(frozen=True)
class Match:
    """Nearest exemplar of a phrase: its label (a type, a skill class, or ``neg``), the exemplar, cosine."""

    label: str
    exemplar: str
    score: float


class ExemplarIndex:
    """Labelled exemplar phrases embedded once; `nearest` classifies a phrase by cosine similarity."""

    def __init__(self, encoder: TextEncoder, exemplars: dict[str, Sequence[str]]) -> None:
        self.encoder = encoder
        self.labels = [label for label, texts in exemplars.items() for _ in texts]
        self.texts = [text for texts in exemplars.values() for text in texts]
        self.matrix = encoder.encode(self.texts)
        self._cache: dict[str, Match] = {}

    def nearest(self, phrase: str) -> Match:
        """The exemplar closest to `phrase` by cosine; cached, since one plan asks about the same phrases many times."""
        if phrase not in self._cache:
            scores = self.matrix @ self.encoder.encode([phrase])[0]
            best = int(np.argmax(scores))
            self._cache[phrase] = Match(self.labels[best], self.texts[best], float(scores[best]))
        return self._cache[phrase]


class Grounder:
    """Grounds action words to skill classes and noun phrases to object types with embeddings.

    Args:
        encoder: Text encoder (MiniLM for real use; the hashing encoder in fast tests).
        noun_threshold: Minimum cosine to accept an object-type exemplar.
        verb_threshold: Minimum cosine to accept a skill exemplar.
    """

    def __init__(self, encoder: TextEncoder, noun_threshold: float = 0.5, verb_threshold: float = 0.55) -> None:
        self.encoder = encoder
        self.noun_threshold = noun_threshold
        self.verb_threshold = verb_threshold
        self.nouns = ExemplarIndex(encoder, {**lx.TYPE_EXEMPLARS, "neg": lx.NEGATIVE_NOUNS})
        self.verbs = ExemplarIndex(encoder, {**lx.VERB_EXEMPLARS, "neg": lx.NEGATIVE_VERBS})

    def verb(self, word: str) -> Match:
        """The skill class of an action word, or a Match labelled ``neg``/``unknown``."""
        match = self.verbs.nearest(word)
        if match.score < self.verb_threshold:  # too far from any exemplar, skill or not: let structure decide
            return Match("unknown", match.exemplar, match.score)
        return match

    def noun_type(self, np: NounPhrase) -> Match | None:
        """Object type of a phrase's content words; None when it has none ("the red one", "everything").

        Raises:
            PlanningError: when the nearest exemplar is something not in the scene, or nothing is close.
        """
        words = [lemma(w) for w in np.content if w not in lx.GENERIC_HEADS and w not in lx.HARMLESS_MODIFIERS]
        head = lemma(np.content[-1]) if np.content else ""
        if not words and head in lx.GENERIC_HEADS | {""}:
            return None
        query = " ".join(lemma(w) for w in np.content if w not in lx.GENERIC_HEADS) or head
        match = self.nouns.nearest(query)
        if match.label == "neg":
            raise PlanningError(f"there is no {query} here: {np.text!r} is not in the scene", np.text)
        if match.score < self.noun_threshold:
            raise PlanningError(f"cannot ground {np.text!r}: it matches nothing in the scene "
                                f"(nearest: {match.exemplar!r}, similarity {match.score:.2f})", np.text)
        return match


@dataclass
class Mention:
    """Objects an instruction mentioned, in which role (object, dest or source), in which clause."""

    objects: list[str]
    role: str
    clause: int
    type: str | None = None


@dataclass
class Discourse:
    """What the instruction has mentioned so far, for pronouns and "the other ones"."""

    mentions: list[Mention] = field(default_factory=list)

    def add(self, objects: list[str], role: str, clause: int, type_: str | None = None) -> None:
        """Record that a clause mentioned `objects` in `role`; an empty list leaves no mention for pronouns to find."""
        if objects:
            self.mentions.append(Mention(list(objects), role, clause, type_))

    def mentioned(self) -> set[str]:
        """Every object mentioned so far, whatever its role (what "the other ones" excludes)."""
        return {o for m in self.mentions for o in m.objects}

    def resolve(self, np: NounPhrase, slot: str, exclude: Sequence[str] = ()) -> list[str]:
        """Antecedent of a pronoun: the latest fitting mention, preferring objects of earlier actions."""
        fits = SLOTS[slot]
        if np.pronoun in ("there", "here"):
            order = [m for m in reversed(self.mentions) if m.role in ("dest", "source")] + list(reversed(self.mentions))
        else:
            order = [m for m in reversed(self.mentions) if m.role == "object"] + list(reversed(self.mentions))
        for mention in order:
            candidates = [o for o in mention.objects if fits(o) and o not in exclude]
            if not candidates:
                continue
            if np.plural:
                return candidates
            if len(candidates) == 1:
                return candidates
        raise PlanningError(f"cannot tell what {np.text!r} refers to", np.text)


@dataclass
class Scene:
    """What grounding may look at: objects present, the start state, and how to break ties."""

    objects: frozenset[str]
    state: SymbolicState
    choose: Chooser
    discourse: Discourse = field(default_factory=Discourse)
    groundings: list[dict[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    history: History | None = None
    """Past episodes when the planner was given memory (None: no memory, so nothing can be recalled)."""


def resolve_np(grounder: Grounder, np: NounPhrase, slot: str, scene: Scene, exclude: Sequence[str] = ()) -> list[str]:
    """Object ids a noun phrase refers to, in the scene; raises PlanningError for what is not there."""
    if np.pronoun is not None:
        try:
            objects = scene.discourse.resolve(np, slot, exclude)
        except PlanningError:
            held = scene.state.holding
            if held is not None and SLOTS[slot](held) and held not in exclude:
                objects = [held]  # "put it in the bowl" with nothing mentioned: what the gripper holds
                scene.notes.append(f"read {np.text!r} as {held}, which the gripper holds")
            else:
                objects = _last_handled(np, slot, scene, exclude)  # "put it back": what the last episode moved
        scene.groundings.append({"phrase": np.text, "objects": objects, "by": "pronoun"})
        return objects
    if _names_nothing(np):
        raise PlanningError(f"cannot ground {np.text!r}: it names no object", np.text)
    match = grounder.noun_type(np)
    if match is not None and match.label in ("self", "tower"):
        return [match.label]
    candidates = _candidates(np, match, scene)
    candidates = _apply_modifiers(grounder, np, candidates, scene, exclude)
    chosen = _quantity(np, candidates, scene)
    how = f"{match.label} ({match.exemplar!r} {match.score:.2f})" if match else "by colour/quantifier"
    scene.groundings.append({"phrase": np.text, "objects": chosen, "by": how})
    return chosen


def candidates_np(grounder: Grounder, np: NounPhrase, slot: str, scene: Scene) -> list[str]:
    """Every object a (non-pronoun) noun phrase could mean in the scene, before any tie is broken.

    Memory uses it: "the block you put in the drawer" may mean any block the scene has, and memory picks one.
    """
    if _names_nothing(np):
        raise PlanningError(f"cannot ground {np.text!r}: it names no object", np.text)
    match = grounder.noun_type(np)
    if match is not None and match.label in ("self", "tower"):
        return [match.label]
    candidates = _apply_modifiers(grounder, np, _candidates(np, match, scene), scene, ())
    return [c for c in candidates if SLOTS[slot](c)]


def _last_handled(np: NounPhrase, slot: str, scene: Scene, exclude: Sequence[str]) -> list[str]:
    """A pronoun nothing in the instruction or the gripper explains: the object the last episode handled."""
    history = scene.history
    episode = history.last_action() if history else None
    if episode is None or np.plural:
        why = "" if np.plural else (": nothing before it names an object, the gripper is empty, and I do not "
                                    "remember an earlier episode" + ("" if history else " (no past episodes are in "
                                                                    "memory)"))
        raise PlanningError(f"cannot tell what {np.text!r} refers to{why}", np.text)
    handled = [m.obj for m in reversed(episode.moves())] + list(reversed(episode.picked()))
    handled += [o for o, _d in reversed(episode.pushed())]
    fits = [o for o in handled if SLOTS[slot](o) and o not in exclude and o in scene.objects]
    if not fits:
        raise PlanningError(f"cannot tell what {np.text!r} refers to: {episode.label} moved nothing it could be",
                            np.text)
    scene.notes.append(f"memory: read {np.text!r} as {fits[0]}, which {episode.label} handled")
    return [fits[0]]


def _names_nothing(np: NounPhrase) -> bool:
    """A bare determiner ("the", what is left of "the 🥣"): no word says which object, so none may be picked."""
    return (np.determiner is not None and not np.content and not np.colours and np.quantifier is None
            and np.count is None and not np.other and not np.plural and not np.exclude and not np.filters)


def _candidates(np: NounPhrase, match: Match | None, scene: Scene) -> list[str]:
    unknown = [c.split(":", 1)[1] for c in np.colours if c.startswith("other:")]
    if unknown:
        raise PlanningError(f"there is no {unknown[0]} object here: {np.text!r} is not in the scene", np.text)
    type_ = match.label if match else None
    pool = list(lx.TYPE_OBJECTS[type_]) if type_ else list(MOVABLE)
    if np.colours and (type_ in (None, "block")):
        pool = [BLOCK_COLOURS[c] for c in dict.fromkeys(np.colours)]
    elif np.colours:
        scene.notes.append(f"ignored the colour in {np.text!r}: the {type_} has no colour to tell it apart")
    if type_ is None and not np.colours and np.other and not np.content:
        pool = _type_of_last_mention(scene) or pool  # "the rest": more of what was just talked about
    present = [o for o in pool if o in scene.objects]
    if not present:
        raise PlanningError(f"{np.text!r} is not in the scene (present: {', '.join(sorted(scene.objects))})", np.text)
    return present


def _type_of_last_mention(scene: Scene) -> list[str] | None:
    for mention in reversed(scene.discourse.mentions):
        if mention.role == "object":
            types = {t for t, members in lx.TYPE_OBJECTS.items() for o in mention.objects if o in members}
            return list(lx.TYPE_OBJECTS[types.pop()]) if len(types) == 1 else None
    return None


def _apply_modifiers(grounder: Grounder, np: NounPhrase, candidates: list[str], scene: Scene,
                     exclude: Sequence[str]) -> list[str]:
    for other in np.exclude:
        removed = set(resolve_np(grounder, other, "any", scene))
        candidates = [c for c in candidates if c not in removed]
    if np.other:
        mentioned = scene.discourse.mentioned() | set(exclude)
        candidates = [c for c in candidates if c not in mentioned]
    for chunk in np.filters:
        kept = [c for c in candidates if _passes_filter(grounder, chunk.word, chunk.np, c, scene)]
        if kept:
            candidates = kept
        else:
            scene.notes.append(f"no object fits {np.text!r} {chunk.text!r}; ignored that part")
    candidates = [c for c in candidates if c not in exclude] or candidates
    unknown = [w for w in np.content[:-1] if w not in lx.HARMLESS_MODIFIERS and w not in lx.GENERIC_HEADS]
    if unknown and not np.colours and len(candidates) > 1 and np.quantifier is None and not np.plural:
        raise PlanningError(f"cannot ground {np.text!r}: no object is {unknown[0]!r}", np.text)
    if not candidates:
        raise PlanningError(f"nothing left that {np.text!r} could mean", np.text)
    return candidates


def _passes_filter(grounder: Grounder, word: str, where: NounPhrase | None, obj: str, scene: Scene) -> bool:
    if where is None or (word not in lx.LOCATION_PREPOSITIONS and word not in lx.SOURCE_PREPOSITIONS):
        return True
    supports = resolve_np(grounder, where, "target", scene)
    location = scene.state.location(obj)
    return location is not None and location[1] in supports


def _quantity(np: NounPhrase, candidates: list[str], scene: Scene) -> list[str]:
    wants_all = np.quantifier in ("all", "every", "each") or (np.plural and np.count is None)
    if wants_all or len(candidates) == 1:
        return candidates
    count = np.count or 1
    if len(candidates) <= count:
        return candidates
    chosen = scene.choose(candidates, count, np.text)
    scene.notes.append(f"{np.text!r} could be {', '.join(candidates)}; chose {', '.join(chosen)}")
    return chosen
