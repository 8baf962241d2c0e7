"""Symbolic facts as English statements: the text side of perception's grounding.

The env reports what is true as facts (`["in", "red_block", "bowl"]`, `["holding", "mug"]`,
`["open", "drawer"]`, `["gripper_empty"]`). Perception is trained to match camera and touch readings
to the sentences for those facts, and tested by asking it to pick the true sentence among false ones;
this module makes both the sentences and the false alternatives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from perception.errors import InputError

Fact = tuple[str, ...]

GRIPPER = "gripper"
HOLDING = "holding"
EMPTY = "gripper_empty"
RELATIONS = ("in", "on")
OPENABLE = ("open", "closed")

# What touch alone can tell: whether something is held, not what it is.
TOUCH_STATEMENTS = ("the gripper is holding an object", "the gripper is empty")


def _name(object_id: str) -> str:
    return object_id.replace("_", " ")


def as_fact(fact: Sequence[str]) -> Fact:
    """A fact as a tuple of strings (facts arrive as JSON lists)."""
    if isinstance(fact, str) or not fact or not all(isinstance(part, str) for part in fact):
        raise InputError(f"a fact is a non-empty list of strings like ['in', 'red_block', 'bowl'], got {fact!r}")
    return tuple(fact)


def fact_text(fact: Sequence[str]) -> str:
    """The English sentence for one fact; unknown predicates get a generic but readable form."""
    predicate, *args = as_fact(fact)
    if predicate in RELATIONS and len(args) == 2:
        return f"the {_name(args[0])} is {predicate} the {_name(args[1])}"
    if predicate in OPENABLE and len(args) == 1:
        return f"the {_name(args[0])} is {predicate}"
    if predicate == HOLDING and len(args) == 1:
        return f"the gripper is holding the {_name(args[0])}"
    if predicate == EMPTY and not args:
        return "the gripper is empty"
    if len(args) == 1:
        return f"the {_name(args[0])} is {_name(predicate)}"
    return " ".join([_name(predicate), *(_name(a) for a in args)])


def subject(fact: Fact) -> str:
    """What a fact is about; false alternatives about the same subject make the hardest distractors."""
    predicate, *args = fact
    if predicate in (HOLDING, EMPTY):
        return GRIPPER
    return args[0] if args else predicate


def is_grasping(facts: Iterable[Sequence[str]]) -> bool:
    """Whether the gripper holds something according to the facts."""
    return any(fact[0] == HOLDING for fact in facts)


def vocabulary(fact_sets: Iterable[Iterable[Sequence[str]]]) -> list[Fact]:
    """Every fact seen, plus the alternatives the world could produce with the same objects.

    Everything that was ever in/on something gets every (relation, place) seen for any object, every
    object ever held may be held, and openables may be open or closed. Sorted for determinism.
    """
    seen = {as_fact(fact) for facts in fact_sets for fact in facts}
    places = {(f[0], f[2]) for f in seen if f[0] in RELATIONS and len(f) == 3}
    movables = {f[1] for f in seen if f[0] in RELATIONS and len(f) == 3}
    graspable = {f[1] for f in seen if f[0] == HOLDING and len(f) == 2}
    openables = {f[1] for f in seen if f[0] in OPENABLE and len(f) == 2}
    out = set(seen)
    out |= {(rel, obj, place) for obj in movables for rel, place in places if place != obj}
    out |= {(HOLDING, obj) for obj in graspable}
    out |= {(state, obj) for obj in openables for state in OPENABLE}
    if graspable:
        out.add((EMPTY,))
    return sorted(out)


def candidate_sets(
    true_facts: Sequence[Fact],
    vocab: Sequence[Fact],
    n_candidates: int,
    rng: np.random.Generator,
    hard: bool = True,
) -> list[tuple[Fact, list[Fact]]]:
    """For each true fact, `n_candidates - 1` false facts from `vocab` to test retrieval against.

    With `hard`, distractors about the same subject come first (the red block "in the bowl" against
    "on the table"), topped up at random; otherwise they are drawn uniformly among the false facts.
    Facts with too few false alternatives in the vocabulary are skipped.
    """
    truth = set(true_facts)
    false = [fact for fact in vocab if fact not in truth]
    out = []
    for fact in true_facts:
        if len(false) < n_candidates - 1:
            break
        order = rng.permutation(len(false))
        if hard:
            same = [i for i in order if subject(false[i]) == subject(fact)]
            other = [i for i in order if subject(false[i]) != subject(fact)]
            order = np.asarray(same + other)
        out.append((fact, [false[i] for i in order[: n_candidates - 1]]))
    return out
