"""Instruction syntax: normalise text, split it into clauses in execution order, chunk each clause.

This is the rule layer for *structure* only (what is the action word, which noun phrases are objects,
which are destinations, what comes first). What the words refer to is decided in `agent.grounding`
with text embeddings. Nothing here knows the scene.

Example:
    >>> [c.text for c in parse_instruction("Before you close the drawer, put the mug in it")]
    ['put the mug in it', 'close the drawer']
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from agent import lexicon as lx
from agent.chunking import Chunk, chunk_tokens, is_content, surface, verb_lemma
from agent.errors import PlanningError

_CONTRACTIONS = [
    (r"\bcan't\b", "can not"), (r"\bwon't\b", "will not"), (r"\bshan't\b", "shall not"), (r"n't\b", " not"),
    (r"'ll\b", " will"), (r"'re\b", " are"), (r"'ve\b", " have"), (r"'m\b", " am"), (r"'d\b", " would"),
    (r"'s\b", ""),
]
_DIGITS = {"1": "one", "2": "two", "3": "three", "4": "four", "5": "five"}
_SUBORDINATORS = frozenset({"before", "after", "once", "when", "whenever", "while"})
_HARD_BREAKS = frozenset({".", "!", "?"})
_SOFT_BREAKS = frozenset({",", ";", ":"})
_MAX_PHRASE = max(len(key.split()) for key in lx.PHRASES)


_READABLE = frozenset("’‘“”→–—…\u00a0")
"""Non-ASCII characters the tokenizer understands (typographic quotes and dashes, the arrow, a hard space)."""


def check_readable(text: str) -> None:
    """Refuse symbols that are not words (emoji, pictographs, letters outside English) instead of dropping them.

    Dropping them silently changes the meaning: "put the 🔴 block in the 🥣" would read as "put the block in
    the", and a bare "the" must not pick an object.

    Raises:
        PlanningError: naming the phrase around the first such symbol.
    """
    words = text.split()
    for position, word in enumerate(words):
        odd = next((c for c in word if not c.isascii() and c not in _READABLE), None)
        if odd is None:
            continue
        phrase = " ".join(words[max(position - 1, 0) : position + 2]).strip(" ,.;:!?")
        kind = "a letter outside English" if unicodedata.category(odd).startswith("L") else "a symbol, not a word"
        raise PlanningError(f"cannot ground {phrase!r}: {odd!r} ({unicodedata.name(odd, 'unnamed').lower()}) is "
                            f"{kind}; name the object in words", phrase)


def tokenize(text: str) -> list[str]:
    """Lower-case words and punctuation, contractions expanded, multi-word expressions merged."""
    text = text.lower().replace("’", "'").replace("‘", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = re.sub(pattern, replacement, text)
    text = re.sub(r"\s*(->|=>|→)\s*", " into ", text)  # "green block -> drawer"
    text = re.sub(r"[-_/+]", " ", text)
    words = [_DIGITS.get(w, w) for w in re.findall(r"[a-z0-9]+|[,.;:!?&]", text)]
    return _merge_phrases(words)


def _merge_phrases(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(_MAX_PHRASE, len(words) - i), 1, -1):
            replacement = lx.PHRASES.get(" ".join(words[i : i + size]))
            if replacement is not None:
                out.extend(replacement.split())
                i += size
                break
        else:
            out.append("and" if words[i] == "&" else words[i])
            i += 1
    return out


@dataclass
class Clause:
    """One clause of an instruction, chunked, with its position in execution order.

    Attributes:
        text: The clause's words (for messages and language scoring).
        verb: The action word's lemma, or None for state descriptions ("the drawer should be open").
        verb_text: The action word as typed, with its particles ("pick up").
        subject: Chunks before the action word (the object of passives and state descriptions).
        chunks: Chunks after the action word.
        negated: Whether the clause says not to do something.
        position: Order of the clause in the text (pronouns resolve in text order).
    """

    text: str
    verb: str | None
    verb_text: str
    subject: list[Chunk] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    negated: bool = False
    position: int = 0


def parse_instruction(text: str) -> list[Clause]:
    """Clauses of `text` in the order they should be carried out (text order kept in `position`).

    Raises:
        PlanningError: for symbols that are not words (see `check_readable`).
    """
    check_readable(text)
    ordered: list[tuple[int, list[str]]] = []
    counter = 0
    for sentence in _sentences(tokenize(text)):
        numbered = []
        for marker, tokens in _segments(sentence):
            numbered.append((marker, (counter, tokens)))
            counter += 1
        ordered.extend(_order_segments(numbered))
    clauses = []
    for position, tokens in ordered:
        clause = _clause(tokens)
        if clause is not None:
            clause.position = position
            clauses.append(clause)
    return _merge_fronted_places(clauses)


def _merge_fronted_places(clauses: list[Clause]) -> list[Clause]:
    """'in the bowl, put the green block': an opening clause that is only a place belongs to the next one.

    A place-only clause later on ("..., then in the drawer") stays: it repeats the previous action.
    """
    if len(clauses) > 1:
        first = clauses[0]
        if first.verb is None and first.subject and all(c.kind == "pp" for c in first.subject):
            clauses[1].chunks = clauses[1].chunks + first.subject
            return clauses[1:]
    return clauses


def _sentences(tokens: list[str]) -> list[list[str]]:
    sentences, current = [], []
    for token in tokens:
        if token in _HARD_BREAKS:
            sentences.append(current)
            current = []
        else:
            current.append(token)
    sentences.append(current)
    return [s for s in sentences if s]


def starts_clause(tokens: list[str], index: int) -> bool:
    """Whether a new clause begins at `index`: an action word or a sequence word comes first."""
    for token in tokens[index:]:
        if token in lx.SEQUENCE_WORDS or token in _SUBORDINATORS or token == "first" or token in lx.NEGATIONS:
            return True
        if token in lx.FILLERS and token not in lx.PARTICLES:
            continue
        return verb_lemma(token) is not None
    return False


def _segments(tokens: list[str]) -> list[tuple[str, list[str]]]:
    """Split one sentence into (marker, tokens) segments at sequence words and clause-joining 'and'."""
    segments: list[tuple[str, list[str]]] = []
    marker, current = "", []
    for i, token in enumerate(tokens):
        if token == "first" and not any(is_content(t) for t in current):
            marker = "but_first" if marker == "but_first" else "first"
            continue
        boundary = _boundary(tokens, i, current)
        if boundary is None:
            current.append(token)
            continue
        if current:
            segments.append((marker, current))
        marker, current = (boundary if boundary else marker if not current else ""), []
    if current:
        segments.append((marker, current))
    return segments


def _boundary(tokens: list[str], i: int, current: list[str]) -> str | None:
    """The marker starting a new segment at token i (``""`` for a plain break), or None to continue."""
    token = tokens[i]
    if token in lx.SEQUENCE_WORDS:
        return "then"
    if token in _SUBORDINATORS:
        return token if token in ("before", "after") else "after"
    if token == "but" and tokens[i + 1 : i + 2] == ["first"]:
        return "but_first"
    if token == "but" and starts_clause(tokens, i + 1):
        return ""
    if token in _SOFT_BREAKS or token == "and":
        return "" if starts_clause(tokens, i + 1) else None
    return None


Numbered = tuple[int, list[str]]


def _order_segments(segments: list[tuple[str, Numbered]]) -> list[Numbered]:
    """Execution order: 'before X, Y' -> Y, X; 'Y after X' -> X, Y; 'Y, but first X' -> X, Y."""
    order: list[Numbered] = []
    pending: list[Numbered] = []
    for index, (marker, tokens) in enumerate(segments):
        if marker == "before" and index == 0:
            pending.append(tokens)
            continue
        if marker == "after" and order:
            order.insert(len(order) - 1, tokens)
        elif marker == "but_first":
            order.insert(0, tokens)
        else:
            order.append(tokens)
        order.extend(pending)
        pending.clear()
    order.extend(pending)
    return order


def _find_verb(tokens: list[str]) -> int | None:
    """Index of the action word: the first known one, else an unknown word that opens the clause."""
    for i, token in enumerate(tokens):
        previous = tokens[i - 1] if i else ""
        if verb_lemma(token) is None or token in lx.PARTICLES or previous in lx.DETERMINERS | set(lx.QUANTIFIERS):
            continue
        if token in lx.STATE_WORDS and any(is_content(t) for t in tokens[:i]):
            continue  # "the drawer open" / "leave it open": a state, not an action
        return i
    for i, token in enumerate(tokens):  # an unknown word right before an object phrase: "chuck the block"
        nxt = tokens[i + 1 : i + 2]
        if is_content(token) and _unknown_word(token) and nxt and (
            nxt[0] in lx.DETERMINERS or nxt[0] in lx.PRONOUNS or nxt[0] in lx.QUANTIFIERS
        ):
            return i
    return None


def _unknown_word(token: str) -> bool:
    known = (lx.DETERMINERS | lx.PRONOUNS | lx.GENERIC_HEADS | lx.OTHER_WORDS | lx.PARTICLES
             | set(lx.QUANTIFIERS) | set(lx.LOCATION_PREPOSITIONS) | set(lx.DIRECTION_WORDS))
    colours = {w for shades in lx.COLOUR_SHADES.values() for w in shades} | set(lx.OTHER_COLOURS)
    return token not in known and token not in colours


def _clause(tokens: list[str]) -> Clause | None:
    tokens = [t for t in tokens if t not in ("first", "but")]
    if not tokens:
        return None
    negated = any(t in lx.NEGATIONS for t in tokens)
    text = surface(" ".join(t for t in tokens if t not in (",", ";", ":")))
    verb_index = _find_verb(tokens)
    if verb_index is None:
        chunks = chunk_tokens(tokens)
        if any(c.kind != "conj" for c in chunks):
            return Clause(text, None, "", subject=chunks, negated=negated)
        return _empty_clause(text, negated)
    verb_word = tokens[verb_index]
    verb = verb_lemma(verb_word) or verb_word
    subject = chunk_tokens(tokens[:verb_index])
    chunks = chunk_tokens(tokens[verb_index + 1 :])
    particles = [c.word for c in chunks if c.kind == "particle"]
    verb_text = " ".join([verb_word, *particles])
    return Clause(text, verb, verb_text, subject=subject, chunks=chunks, negated=negated)


def _empty_clause(text: str, negated: bool) -> Clause | None:
    if all(not is_content(t) for t in text.split()):
        return None
    return Clause(text, None, "", negated=negated)
