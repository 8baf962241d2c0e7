"""Questions about the scene, answered from perception: "is the drawer open?", "where is the red block?".

A question is first grounded (parsed into a `Query` over the estimator's vocabulary); one it cannot ground
raises `UngroundedQuestion`, naming the phrase, rather than being answered with a guess. The answer comes
from a `SceneEstimate` (or, for scoring, from the oracle's labels through the same code), with the
estimator's confidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from experiments.common.errors import InputError
from perception.scene_estimator import HELD, NOWHERE, UNKNOWN, SceneEstimate

SYNONYMS = {"cube": "block", "cup": "mug", "box": "block", "dish": "plate", "cupboard": "drawer"}
COLOUR_WORDS = ("red", "green", "blue", "yellow")
PLACES = ("bowl", "drawer", "plate", "table")
QUESTION_WORDS = r"(is|are|was|were|does|do|has|what|whats|where|which|tell me|show me|can you)\b"


class UngroundedQuestion(InputError):
    """A question whose words do not name anything the estimator can answer about."""


@dataclass(frozen=True)
class Query:
    """A grounded question: `kind` is drawer_state, holding, where, what_at or is_at."""

    kind: str
    subject: str = ""
    place: str = ""
    state: str = ""


@dataclass(frozen=True)
class Answer:
    """An answer in words, a machine-readable value, and how sure perception is of it."""

    question: str
    text: str
    value: Any
    confidence: float
    query: Query
    unknown: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The answer as plain JSON (the `--json` output of `embodia ask`)."""
        return {"question": self.question, "answer": self.text, "value": self.value,
                "confidence": round(self.confidence, 4), "query": self.query.__dict__, "unknown": self.unknown}


def _normalise(question: str) -> str:
    words = re.findall(r"[a-z]+", question.lower())
    return " ".join(SYNONYMS.get(w, w) for w in words)


def _names(objects: Sequence[str]) -> dict[str, str]:
    """Phrases that name each object: "red block", "red", "mug"; and the places."""
    names: dict[str, str] = {}
    for name in objects:
        words = name.split("_")
        names[" ".join(words)] = name
        if len(words) == 2 and words[0] in COLOUR_WORDS:
            names[words[0]] = name
    return names


def _find_object(text: str, objects: Sequence[str]) -> str | None:
    """The first object the text names (the subject of "is the mug on the red block?" is the mug)."""
    found = [(match.start(), -len(phrase), name) for phrase, name in _names(objects).items()
             if (match := re.search(rf"\b{phrase}\b", text))]
    return min(found)[2] if found else None


def _find_place(text: str, objects: Sequence[str], exclude: str = "") -> str | None:
    """The place a question asks about: a container, the plate, the table, or a block ("on the red block")."""
    for place in PLACES:
        if re.search(rf"\b{place}\b", text):
            return place
    for phrase, name in sorted(_names(objects).items(), key=lambda kv: -len(kv[0])):
        if name != exclude and name.endswith("_block") and re.search(rf"\b(on|under|top of) (the )?{phrase}\b",
                                                                       text):
            return name
    return None


def ground(question: str, objects: Sequence[str]) -> Query:
    """Parse `question` into a `Query`; raise `UngroundedQuestion` naming the phrase when it cannot."""
    text = _normalise(question)
    if not text:
        raise UngroundedQuestion(f"cannot ground the question {question!r}: it has no words")
    if not question.strip().endswith("?") and not re.match(QUESTION_WORDS, text):
        raise UngroundedQuestion(f"cannot ground the question {question!r}: it is not a question (to have the "
                                 "robot act, use `embodia run`)")
    if re.search(r"\b(holding|hold|held|gripper|hand|grasp|grasping)\b", text) and not re.search(r"\bwhere\b", text):
        subject = _find_object(text, objects)
        return Query("is_at", subject=subject, place=HELD) if subject else Query("holding")
    if "drawer" in text and re.search(r"\b(open|opened|closed|shut)\b", text) and not re.search(r"\bwhat\b", text):
        return Query("drawer_state", state="closed" if re.search(r"\b(closed|shut)\b", text) else "open")
    subject = _find_object(text, objects)
    if re.search(r"\bwhere\b", text):
        if subject is None:
            raise UngroundedQuestion(f"cannot ground the question {question!r}: it asks where, but names none of "
                                     f"{', '.join(' '.join(o.split('_')) for o in objects)}")
        return Query("where", subject=subject)
    if re.search(r"\b(what|which)\b", text) and (place := _find_place(text, objects)) is not None:
        return Query("what_at", place=place)
    place = _find_place(text, objects, exclude=subject or "")
    if re.match(r"(is|are) ", text) and subject is not None and place is not None:
        return Query("is_at", subject=subject, place=place)
    raise UngroundedQuestion(f"cannot ground the question {question!r}: ask whether the drawer is open, where an "
                             "object is, what is in/on a place, or what the gripper holds")


def _where_text(name: str, location: str) -> str:
    label = name.replace("_", " ")
    if location == UNKNOWN:
        return f"I cannot see the {label}"
    if location == HELD:
        return f"the {label} is in the gripper"
    if location == NOWHERE:
        return f"the {label} is not resting anywhere (moving or tipped over)"
    if location in ("bowl", "drawer"):
        return f"the {label} is in the {location}"
    return f"the {label} is on the {location.removeprefix('on_').replace('_', ' ')}"


def _at(location: str, place: str) -> bool:
    return location == place or location == f"on_{place}"


def answer(question: str, scene: SceneEstimate) -> Answer:
    """Answer `question` from a perceived scene (`UngroundedQuestion` if it cannot be grounded)."""
    objects = list(scene.objects)
    query = ground(question, objects)
    unknown = scene.unknown
    if query.kind == "drawer_state":
        is_open = scene.drawer_open
        yes = is_open if query.state == "open" else not is_open
        text = f"{'yes' if yes else 'no'}: the drawer is {'open' if is_open else 'closed'}"
        return Answer(question, text, yes, scene.drawer_confidence, query)
    if query.kind == "holding":
        held = [n for n, e in scene.objects.items() if e.location == HELD]
        if scene.holding:
            what = held[0].replace("_", " ") if held else "something"
            return Answer(question, f"yes: the gripper holds the {what}", held[0] if held else True,
                          scene.holding_confidence, query)
        return Answer(question, "no: the gripper is empty", False, scene.holding_confidence, query)
    if query.kind == "where":
        estimate = scene.objects[query.subject]
        return Answer(question, _where_text(query.subject, estimate.location), estimate.location,
                      estimate.confidence if estimate.location != UNKNOWN else 1.0 - estimate.visible, query)
    if query.kind == "is_at":
        estimate = scene.objects[query.subject]
        if estimate.location == UNKNOWN:
            return Answer(question, f"I don't know: {_where_text(query.subject, UNKNOWN)}", None,
                          1.0 - estimate.visible, query, [query.subject])
        yes = _at(estimate.location, query.place)
        text = f"{'yes' if yes else 'no'}: {_where_text(query.subject, estimate.location)}"
        return Answer(question, text, yes, estimate.confidence, query)
    inside = [n for n, e in scene.objects.items() if _at(e.location, query.place)]
    confidence = 1.0
    for name, estimate in scene.objects.items():  # the answer is right if every object's placement is
        if name in unknown:
            continue
        confidence *= estimate.confidence
    preposition = "in" if query.place in ("bowl", "drawer") else "on"
    place = query.place.replace("_", " ")
    text = (f"{preposition} the {place}: " + ", ".join(f"the {n.replace('_', ' ')}" for n in inside)
            if inside else f"nothing I can see is {preposition} the {place}")
    hidden = [n for n in unknown if n != query.place]
    if hidden:
        text += f" (not seen: {', '.join(n.replace('_', ' ') for n in hidden)})"
    return Answer(question, text, inside, confidence, query, hidden)
