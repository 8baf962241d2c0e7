"""Instructions that refer to the agent's past: questions, "do that again", and "the block you put in the drawer".

The planner runs `recollect` before parsing. Three forms need memory (`agent.recall.History`):

* a question ("where did you put the mug?", "where is the red block?") gets an answer, not an action;
* a repeat ("do that again", "do the same with the blue block") reuses the goal of the last action;
* a relative clause about the agent's own actions ("the block you put in the drawer") is resolved to the
  object memory names, and the instruction is rewritten with that object ("take out the red block").

Memory only decides what the scene leaves open: a phrase that names one object in the scene keeps it (memory
is then only quoted in a note), and with no memory the planner says what it does not remember instead of
guessing. "put it back (where it was)" is handled where destinations are (`agent.goal_makers`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent import lexicon as lx
from agent.chunking import NounPhrase, chunk_tokens, surface, verb_lemma
from agent.errors import PlanningError
from agent.grounding import Grounder, Scene, candidates_np, resolve_np
from agent.parsing import tokenize
from agent.recall import EpisodeMemory, History
from agent.skills import MOVABLE, Predicate

PUT_VERBS = frozenset({"put", "placed", "place", "moved", "dropped", "left", "hid", "hidden", "stashed", "stored",
                       "set", "returned", "stacked", "laid", "brought", "carried", "stuck", "tucked", "loaded",
                       "inserted", "deposited", "transferred", "popped", "sent"})
TAKE_VERBS = frozenset({"took", "taken", "removed", "pulled", "got", "picked", "grabbed", "lifted", "fetched",
                        "retrieved", "extracted", "unloaded", "held", "touched"})
PUSH_VERBS = frozenset({"pushed", "nudged", "shoved", "slid", "poked", "bumped", "kicked"})
RECALL_VERBS = PUT_VERBS | TAKE_VERBS | PUSH_VERBS
"""Past-tense action words in "the block you put in the drawer"."""
_RELATIVE_SKIP = frozenset({"just", "have", "had", "already", "earlier", "previously", "recently", "last",
                            "before", "first"})
_WHERE_VERBS = frozenset({"put", "place", "placed", "leave", "left", "hide", "hid", "move", "moved", "stash",
                          "stashed", "store", "stored", "keep", "kept", "drop", "dropped", "go", "went", "end",
                          "ended", "take", "took", "bring", "brought", "set"})
_REPEAT_WORDS = frozenset({"do", "repeat", "again", "that", "it", "same", "thing", "this", "what", "last", "once",
                           "more", "the", "one", "did", "just", "you", "please", "now", "exactly", "then", "can",
                           "could", "would", "will", "time", "as", "before", "so", "okay", "ok", "a", "action",
                           "step", "like", "try", "go", "ahead"})
_REPEAT_MARKERS = frozenset({"again", "repeat", "same"})
_SUBSTITUTE = frozenset({"with", "for", "to", "using"})
_BOUNDARY = (set(lx.LOCATION_PREPOSITIONS) | lx.SOURCE_PREPOSITIONS | lx.UNSUPPORTED_PREPOSITIONS | lx.CONJUNCTIONS
             | lx.SEQUENCE_WORDS | lx.PARTICLES | set(lx.DIRECTION_WORDS) | lx.PRONOUNS
             | {",", ";", ":", ".", "!", "?", "you", "before", "after", "once", "when", "whenever", "while", "if",
                "because", "since", "until", "as", "so", "than"})


@dataclass
class Recollection:
    """What `recollect` made of an instruction.

    Attributes:
        text: The instruction to parse (rewritten when a relative clause was resolved by memory).
        answer: The answer to a question (then there is nothing to do).
        stages: The goal stages of a repeat (then `text` is not parsed).
        contexts: Instruction text per stage of a repeat (for language scores).
    """

    text: str
    answer: str | None = None
    stages: tuple[tuple[Predicate, ...], ...] = ()
    contexts: list[str] = field(default_factory=list)


def recollect(instruction: str, grounder: Grounder, scene: Scene) -> Recollection:
    """Answer a question, expand a repeat, or resolve "the X you put in Y"; else return the text unchanged.

    Raises:
        PlanningError: when the instruction needs memory that is absent ("I do not remember ...").
    """
    tokens = tokenize(instruction)
    words = [t for t in tokens if t not in (".", "!", "?", ",", ";", ":")]
    if words[:1] == ["where"]:
        return Recollection(instruction, answer=_answer_where(words[1:], grounder, scene))
    repeat = _repeat_parts(words)
    if repeat is not None:
        return _repeat(instruction, repeat, grounder, scene)
    rewritten = _resolve_relatives(tokens, grounder, scene)
    return Recollection(instruction if rewritten is None else " ".join(rewritten))


def _name(obj: str) -> str:
    return "the " + obj.replace("_", " ")


def _place_text(location: tuple[str, str]) -> str:
    return f"{location[0]} {_name(location[1])}"


def _first_np(tokens: list[str]) -> NounPhrase | None:
    return next((c.np for c in chunk_tokens(tokens) if c.kind == "np" and c.np is not None), None)


def _no_memory(what: str, phrase: str, history: History | None) -> PlanningError:
    why = ("no past episodes are in memory (give the agent its knowledge store, e.g. --memory)" if not history
           else "nothing in memory says so")
    return PlanningError(f"I do not remember {what}: {why}", phrase)


# --- questions ------------------------------------------------------------------------------------------

def _answer_where(words: list[str], grounder: Grounder, scene: Scene) -> str:
    """Answer a where-question.

    "where did you put X" asks memory; "where is X" asks the scene (and memory for what it cannot see).
    """
    asks_memory = any(w in _WHERE_VERBS for w in words)
    rest = [w for w in words if w not in _WHERE_VERBS and w not in ("up", "ups")]
    np = _first_np(rest)
    if np is None:
        raise PlanningError("cannot tell what the question asks about: name an object, e.g. 'where is the mug?'",
                            " ".join(words) or "where")
    if np.pronoun is not None:
        candidates = resolve_np(grounder, np, "movable", scene)
    else:
        candidates = candidates_np(grounder, np, "movable", scene)
    if asks_memory:
        return _where_put(np, candidates, scene)
    return " ".join(_where_is(obj, scene) for obj in candidates)


def _where_put(np: NounPhrase, candidates: list[str], scene: Scene) -> str:
    history = scene.history
    found = [(e, m) for e, m in (history.moves() if history else ()) if m.obj in candidates]
    if not found:
        raise _no_memory(f"putting {np.text} anywhere", np.text, history)
    seen: set[str] = set()
    answers = []
    for episode, move in found:
        if move.obj in seen:
            continue
        seen.add(move.obj)
        text = f"I put {_name(move.obj)} {_place_text(move.after)} ({episode.label})."
        now = scene.state.location(move.obj)
        if scene.state.holding == move.obj:
            text += " I am holding it now."
        elif now is not None and now != move.after:
            text += f" It is now {_place_text(now)}."
        answers.append(text)
        if not np.plural:
            break
    if len(candidates) > 1 and not np.plural:
        scene.notes.append(f"memory: {np.text!r} read as {next(iter(seen))}, the last one I put somewhere")
    return " ".join(answers)


def _where_is(obj: str, scene: Scene) -> str:
    if scene.state.holding == obj:
        return f"I am holding {_name(obj)}."
    location = scene.state.location(obj)
    if location is None:
        return f"I do not know where {_name(obj)} is."
    remembered = any(n.startswith(f"memory: {obj} ") for n in scene.notes)
    if remembered:
        return f"I cannot see {_name(obj)}; I remember it {_place_text(location)}."
    assumed = any(n.startswith("look: ") and obj in n.split(" not seen")[0] for n in scene.notes)
    if assumed:
        return f"I cannot see {_name(obj)} and do not remember where it is; it may be in the closed drawer."
    return f"{_name(obj).capitalize()} is {_place_text(location)}."


# --- "do that again" ----------------------------------------------------------------------------------------

def _repeat_parts(words: list[str]) -> list[str] | None:
    """The words after "with" in a repeat ("do the same with the blue block"), [] for a plain repeat, else None."""
    cut = next((i for i, w in enumerate(words) if w in _SUBSTITUTE), len(words))
    head, tail = words[:cut], words[cut + 1 :]
    marked = set(head) & _REPEAT_MARKERS or ("more" in head and {"once", "time"} & set(head))
    if not head or not marked or not set(head) <= _REPEAT_WORDS:
        return None
    if cut < len(words) and not tail:
        return None
    return tail


def _repeat(instruction: str, tail: list[str], grounder: Grounder, scene: Scene) -> Recollection:
    history = scene.history
    previous = history.last_action() if history else None
    if previous is None:
        raise _no_memory("doing anything before", instruction.strip(), history)
    stages = previous.goal
    note = f"memory: repeating {previous.label}"
    if tail:
        np = _first_np(tail)
        if np is None:
            raise PlanningError(f"cannot tell what {' '.join(tail)!r} names", " ".join(tail))
        new = resolve_np(grounder, np, "movable", scene)
        stages = _substitute(previous, new, np.text)
        note += f" with {', '.join(new)}"
    scene.notes.append(f"{note}: goal " + "; ".join(", ".join(str(p) for p in s) for s in stages))
    return Recollection(instruction, stages=stages, contexts=[previous.instruction] * len(stages))


def _substitute(previous: EpisodeMemory, new: list[str], phrase: str) -> tuple[tuple[Predicate, ...], ...]:
    """The previous goal with its main object replaced by `new` ("do the same with the blue block")."""
    movers = [p.args[0] for s in previous.goal for p in s if p.args and p.args[0] in MOVABLE]
    if not movers:
        raise PlanningError(f"{previous.instruction!r} moved no object, so it cannot be done with {phrase!r}", phrase)
    old = movers[0]
    stages = []
    for stage in previous.goal:
        out: list[Predicate] = []
        for p in stage:
            if p.args and p.args[0] == old:
                for obj in new:
                    if obj in p.args[1:]:
                        raise PlanningError(f"cannot do {previous.instruction!r} with {phrase!r}: it would put "
                                            f"{obj} on itself", phrase)
                    out.append(Predicate(p.predicate, (obj, *p.args[1:])))
            else:
                out.append(p)
        stages.append(tuple(out))
    return tuple(stages)


# --- "the block you put in the drawer" ------------------------------------------------------------------------

@dataclass
class _Relative:
    start: int
    end: int
    np: NounPhrase
    verb: str
    preposition: str | None
    place: NounPhrase | None


def _find_relative(tokens: list[str], begin: int = 0) -> _Relative | None:
    """The first "the <NP> [that] you <past verb> [<preposition> <NP>]" at or after `begin`."""
    for i in range(max(begin, 1), len(tokens)):
        if tokens[i] != "you":
            continue
        v = i + 1
        while v < len(tokens) and tokens[v] in _RELATIVE_SKIP:
            v += 1
        if v >= len(tokens) or tokens[v] not in RECALL_VERBS:
            continue
        start = i - 1 if tokens[i - 1] in ("that", "which") else i
        np_start = _np_start(tokens, start)
        opens = np_start < start and (tokens[np_start] in lx.DETERMINERS or tokens[np_start] in lx.QUANTIFIERS)
        np = _first_np(tokens[np_start:start]) if opens else None
        if np is None or np.pronoun is not None or not (np.content or np.colours):
            continue
        end = v + 1
        while end < len(tokens) and tokens[end] in lx.PARTICLES and not _np_at(tokens, end + 1):
            end += 1
        preposition, place, end = _place_phrase(tokens, end)
        return _Relative(np_start, end, np, tokens[v], preposition, place)
    return None


def _np_start(tokens: list[str], start: int) -> int:
    """Where the noun phrase before a relative clause begins (at its determiner)."""
    np_start = start
    while np_start > 0 and tokens[np_start - 1] not in _BOUNDARY and tokens[np_start - 1] not in lx.FILLERS:
        word = tokens[np_start - 1]
        if verb_lemma(word) is not None and word not in lx.DETERMINERS and np_start == start:
            break
        np_start -= 1
        if word in lx.DETERMINERS or word in lx.QUANTIFIERS:
            break
    return np_start


def _place_phrase(tokens: list[str], end: int) -> tuple[str | None, NounPhrase | None, int]:
    """The "in the drawer" / "out of the bowl" that ends a relative clause, if any, and where it stops."""
    if end >= len(tokens) or (tokens[end] not in lx.LOCATION_PREPOSITIONS and tokens[end] not in
                              lx.SOURCE_PREPOSITIONS):
        return None, None, end
    stop = end + 1
    while stop < len(tokens) and tokens[stop] not in _BOUNDARY:
        stop += 1
    place = _first_np(tokens[end + 1 : stop])
    return (None, None, end) if place is None else (tokens[end], place, stop)


def _np_at(tokens: list[str], index: int) -> bool:
    return index < len(tokens) and (tokens[index] in lx.DETERMINERS or tokens[index] in lx.QUANTIFIERS)


def _resolve_relatives(tokens: list[str], grounder: Grounder, scene: Scene) -> list[str] | None:
    """Tokens with each "NP you VERB [PP]" replaced by the objects memory names; None when there is none."""
    changed = False
    begin = 0
    while (relative := _find_relative(tokens, begin)) is not None:
        objects = _recall_objects(relative, grounder, scene)
        words = " and ".join(_name(o) for o in objects).split()
        tokens = [*tokens[: relative.start], *words, *tokens[relative.end :]]
        begin = relative.start + len(words)
        changed = True
    return tokens if changed else None


def _recall_objects(relative: _Relative, grounder: Grounder, scene: Scene) -> list[str]:
    phrase = surface(" ".join([relative.np.text, "you", relative.verb,
                               *([relative.preposition] if relative.preposition else []),
                               *([relative.place.text] if relative.place else [])]))
    candidates = candidates_np(grounder, relative.np, "movable", scene)
    place = resolve_np(grounder, relative.place, "target", scene)[0] if relative.place is not None else None
    history = scene.history
    matches = _matching(history, relative, candidates, place) if history else []
    if len(candidates) == 1:  # the scene settles it: memory may only comment
        obj = candidates[0]
        others = _matching(history, relative, list(MOVABLE), place) if history and not matches else []
        if others:
            scene.notes.append(f"memory says {phrase.split(' you ', 1)[1]!r} was {others[0][0]} "
                               f"({others[0][1].label}), but the instruction names {obj}; kept {obj}")
        return [obj]
    if not matches:
        what = surface(" ".join([*(w for w in relative.np.text.split() if w not in lx.DETERMINERS), "I",
                                 relative.verb, *([relative.preposition] if relative.preposition else []),
                                 *([relative.place.text] if relative.place else [])]))
        raise _no_memory(f"which {what}", phrase, history)
    chosen = list(dict.fromkeys(o for o, _e in matches)) if relative.np.plural else [matches[0][0]]
    episode = next(e for o, e in matches if o == chosen[0])
    scene.notes.append(f"memory: {phrase!r} is {', '.join(chosen)} ({episode.label})")
    scene.groundings.append({"phrase": phrase, "objects": chosen, "by": f"memory ({episode.label})"})
    return chosen


def _matching(history: History, relative: _Relative, candidates: list[str], place: str | None
              ) -> list[tuple[str, EpisodeMemory]]:
    """(object, episode) pairs memory offers for the relative clause, most recent first."""
    out: list[tuple[str, EpisodeMemory]] = []
    source = relative.preposition in lx.SOURCE_PREPOSITIONS or relative.verb in TAKE_VERBS
    for episode in history.newest_first():
        if relative.verb in PUSH_VERBS:
            out += [(o, episode) for o, _d in reversed(episode.pushed()) if o in candidates]
            continue
        for move in reversed(episode.moves()):
            if move.obj not in candidates:
                continue
            where = move.before if source and place is not None else move.after
            if place is None or (where is not None and where[1] == place):
                out.append((move.obj, episode))
        if relative.verb in TAKE_VERBS and place is None:
            out += [(o, episode) for o in reversed(episode.picked()) if o in candidates]
    return out
