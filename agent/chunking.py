"""Chunking one clause into noun phrases, prepositional phrases, directions and states.

Used by `agent.parsing`. A chunk is syntax only: ``the crimson cube`` becomes a noun phrase with colour
word ``crimson`` and content ``cube``; which object that is gets decided in `agent.grounding`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent import lexicon as lx

_COLOUR_OF = {word: colour for colour, words in lx.COLOUR_SHADES.items() for word in words}
_COLOUR_OF.update({word: f"other:{word}" for word in lx.OTHER_COLOURS})
_VERB_WORDS = {word: verb for verb, words in lx.VERB_EXEMPLARS.items() for word in words if " " not in word}
_NOUN_WORDS = {w for words in lx.TYPE_EXEMPLARS.values() for phrase in words for w in phrase.split()}
_NOUN_WORDS |= {w for phrase in lx.NEGATIVE_NOUNS for w in phrase.split()} | set(lx.GENERIC_HEADS)
_VOCABULARY = set(_VERB_WORDS) | _NOUN_WORDS | set(lx.OTHER_WORDS) | set(lx.DIRECTION_WORDS)
_PREPOSITIONS = (set(lx.LOCATION_PREPOSITIONS) | lx.SOURCE_PREPOSITIONS | lx.UNSUPPORTED_PREPOSITIONS
                 | lx.WITH_PREPOSITIONS)
_NOT_NP = _PREPOSITIONS | set(lx.DIRECTION_WORDS) | lx.PARTICLES | set(lx.STATE_WORDS) | lx.CONJUNCTIONS | {
    "except", "release", "discard", ";", ":"} | lx.NEGATIONS | lx.SEQUENCE_WORDS


def lemma(word: str) -> str:
    """Dictionary form of an inflected word the parser knows (``grabbing`` -> ``grab``); else the word."""
    if word in lx.IRREGULAR_FORMS:
        return lx.IRREGULAR_FORMS[word]
    if word in _VOCABULARY:
        return word
    for candidate in _stems(word):
        if candidate in _VOCABULARY:
            return candidate
    return word


def _stems(word: str) -> list[str]:
    stems = []
    if word.endswith("ies"):
        stems.append(word[:-3] + "y")
    if word.endswith("es"):
        stems.append(word[:-2])
    if word.endswith("s"):
        stems.append(word[:-1])
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)]
            stems += [stem, stem + "e"]
            if len(stem) > 2 and stem[-1] == stem[-2]:
                stems.append(stem[:-1])
    return stems


def verb_lemma(word: str) -> str | None:
    """The lemma of a known action word (``grabbed`` -> ``grab``), or None."""
    if word == "release":
        return "release"
    if word == "discard":
        return "discard"
    base = lemma(word)
    return base if base in _VERB_WORDS else None


def verb_class(word: str) -> str | None:
    """The skill class of a known action lemma (``grab`` -> ``pick``), or None."""
    return _VERB_WORDS.get(word)


def colour_of(word: str) -> str | None:
    """``crimson`` -> ``red``; a colour no block has -> ``other:<word>``; not a colour -> None."""
    return _COLOUR_OF.get(word)


def is_content(token: str) -> bool:
    """Whether a token may carry meaning (not politeness, punctuation or a conjunction)."""
    return (token not in lx.FILLERS and token not in lx.CONJUNCTIONS and token not in (";", ":")) or token in (
        lx.PARTICLES)


SURFACE = {"ontop": "on top of", "outof": "out of", "offof": "off of", "nextto": "next to", "infrontof": "in front of",
           "closeto": "close to", "leftof": "left of", "rightof": "right of", "awayfromobj": "away from",
           "upsidedown": "upside down"}


def surface(text: str) -> str:
    """Undo the parser's merged tokens for messages: ``nextto the bowl`` -> ``next to the bowl``."""
    return " ".join(SURFACE.get(word, word) for word in text.split())


@dataclass
class NounPhrase:
    """A noun phrase as typed, split into its parts.

    Attributes:
        text: The words as typed (for error messages).
        determiner: ``the``, ``a``, ``this`` ... or None.
        quantifier: ``all``, ``every``, ``each``, ``both`` or a number word, or None.
        count: How many objects the quantifier asks for (None: all that match).
        other: Whether it says "other", "remaining" or "rest".
        colours: Colours named (``red``, or ``other:purple`` for colours no block has).
        content: Non-colour content words, e.g. ``("coffee", "mug")``.
        plural: Whether it refers to several objects.
        pronoun: ``it``, ``them``, ``there`` ... when the phrase is a pronoun.
        exclude: Phrases after "except".
        filters: Location phrases that restrict it ("the block that is in the bowl").
    """

    text: str
    determiner: str | None = None
    quantifier: str | None = None
    count: int | None = None
    other: bool = False
    colours: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    plural: bool = False
    pronoun: str | None = None
    exclude: list[NounPhrase] = field(default_factory=list)
    filters: list[Chunk] = field(default_factory=list)

    @property
    def head(self) -> str | None:
        """The last content word, lemmatised (``blocks`` -> ``block``)."""
        return lemma(self.content[-1]) if self.content else None


@dataclass
class Chunk:
    """One piece of a clause.

    Attributes:
        kind: ``np``, ``pp`` (a preposition and maybe a noun phrase), ``dir`` (a direction word),
            ``state`` (open/closed), ``particle``, ``conj``, ``except`` or ``rel`` ("that is").
        word: The word (preposition, direction, particle...) as normalised.
        np: The noun phrase of ``np`` and ``pp`` chunks (None for "put it inside").
    """

    kind: str
    word: str = ""
    np: NounPhrase | None = None

    @property
    def text(self) -> str:
        """The chunk's words as typed (the word and its noun phrase), for notes and error messages."""
        return surface(" ".join(part for part in (self.word, self.np.text if self.np else "") if part))


def chunk_tokens(tokens: list[str]) -> list[Chunk]:
    """Chunk a clause's tokens; fillers are dropped, everything else ends up in some chunk."""
    chunks: list[Chunk] = []
    i = 0
    while i < len(tokens):
        chunk, i = _next_chunk(tokens, i, chunks)
        if chunk is not None:
            chunks.append(chunk)
    return _attach_exclusions(chunks)


def _np_follows(tokens: list[str], i: int) -> bool:
    for token in tokens[i:]:
        if token in ("to", "for", "so", "as"):
            return False
        if token in lx.FILLERS and token not in lx.PRONOUNS:
            continue
        return token not in _NOT_NP or token in lx.DETERMINERS or colour_of(token) is not None
    return False


def _next_chunk(tokens: list[str], i: int, chunks: list[Chunk]) -> tuple[Chunk | None, int]:
    token = tokens[i]
    if token in ("that", "which", "who") and chunks and chunks[-1].kind == "np" and _relative_follows(tokens, i + 1):
        return Chunk("rel", token), i + 1
    if token in _PREPOSITIONS and (token != "to" or _np_follows(tokens, i + 1)):
        return _preposition(tokens, i)
    if token in lx.PARTICLES and token not in lx.DIRECTION_WORDS:
        return Chunk("particle", token), i + 1
    if token in lx.DIRECTION_WORDS:
        return Chunk("dir", token), i + 1
    if token in lx.STATE_WORDS:
        return Chunk("state", lx.STATE_WORDS[token]), i + 1
    if token in lx.CONJUNCTIONS:
        return Chunk("conj", token), i + 1
    if token == "except":
        return Chunk("except", token), i + 1
    if token in lx.FILLERS or token in lx.NEGATIONS or token in (";", ":") or token in lx.SEQUENCE_WORDS:
        return None, i + 1
    return _noun_phrase(tokens, i)


def _relative_follows(tokens: list[str], i: int) -> bool:
    for token in tokens[i:]:
        if token in lx.FILLERS and token not in lx.PARTICLES:
            continue
        return token in _PREPOSITIONS or token in lx.STATE_WORDS
    return False


def _preposition(tokens: list[str], i: int) -> tuple[Chunk, int]:
    word = tokens[i]
    if _np_follows(tokens, i + 1):
        j = i + 1
        while tokens[j] in lx.FILLERS and tokens[j] not in lx.PRONOUNS:
            j += 1
        if tokens[j] in lx.DIRECTION_WORDS and word in lx.LOCATION_PREPOSITIONS:
            return Chunk("pp", word, NounPhrase(tokens[j], content=[tokens[j]])), j + 1
        np_chunk, end = _noun_phrase(tokens, j)
        return Chunk("pp", word, np_chunk.np if np_chunk else None), end
    if word in ("off", "over", "in", "inside") and word in lx.PARTICLES and word not in ("in", "inside"):
        return Chunk("particle", word), i + 1
    return Chunk("pp", word, None), i + 1


def _np_word(tokens: list[str], j: int, np_words: list[str]) -> bool:
    """Whether tokens[j] continues the noun phrase collected so far."""
    token = tokens[j]
    if token in ("that", "which", "who") and np_words and _relative_follows(tokens, j + 1):
        return False
    if token in lx.CONJUNCTIONS:  # "the red and blue blocks": colours joined inside one phrase
        nxt = tokens[j + 1 : j + 2]
        has_content = any(colour_of(w) is None and w not in lx.DETERMINERS for w in np_words)
        return bool(nxt) and colour_of(nxt[0]) is not None and not has_content and bool(np_words)
    if token == "of":
        return all(w in lx.QUANTIFIERS or w in lx.DETERMINERS or w in lx.GENERIC_HEADS for w in np_words)
    if token in lx.DIRECTION_WORDS:
        return bool(np_words) and np_words[-1] in lx.DETERMINERS  # "the left block"
    return token not in _NOT_NP and (token not in lx.FILLERS or token in lx.PRONOUNS or token == "one")


def _noun_phrase(tokens: list[str], i: int) -> tuple[Chunk | None, int]:
    words: list[str] = []
    partitive: list[str] = []  # "one of the blocks": the words before "of"
    j = i
    while j < len(tokens) and _np_word(tokens, j, words):
        if tokens[j] == "of":
            partitive, words = words, []
        elif tokens[j] not in lx.CONJUNCTIONS:
            words.append(tokens[j])
        j += 1
    if not words:
        return None, max(j, i + 1)
    np = build_noun_phrase(words)
    if partitive:
        np.text = " of ".join([" ".join(partitive), np.text])
        quantity = next((w for w in partitive if w in lx.QUANTIFIERS or w == "one"), None)
        if quantity is not None:
            np.quantifier, np.count = quantity, 1 if quantity == "one" else lx.QUANTIFIERS[quantity]
            np.plural = np.count != 1
    return Chunk("np", np=np), j


def build_noun_phrase(words: list[str]) -> NounPhrase:
    """Split a noun phrase's words into determiner, quantifier, colours and content."""
    np = NounPhrase(" ".join(words))
    rest = list(words)
    while rest and (rest[0] in lx.DETERMINERS or rest[0] in lx.QUANTIFIERS or rest[0] in lx.OTHER_WORDS):
        word = rest.pop(0)
        if word in lx.QUANTIFIERS:
            np.quantifier, np.count = word, lx.QUANTIFIERS[word]
        elif word in lx.OTHER_WORDS:
            np.other = True
        elif np.determiner is None:
            np.determiner = word
    if rest and rest[-1] in lx.OTHER_WORDS:
        np.other = True
        rest.pop()
    _split_colours(np, rest)
    _finish_pronoun(np)
    return np


def _split_colours(np: NounPhrase, rest: list[str]) -> None:
    for index, word in enumerate(rest):
        colour = colour_of(word)
        is_last = index == len(rest) - 1
        if colour is not None and not (is_last and word in lx.SHADE_NOUNS and len(rest) > 0 and not np.colours):
            np.colours.append(colour)
        elif word not in lx.OTHER_WORDS:
            np.content.append(word)
    head = np.content[-1] if np.content else ""
    np.plural = (
        np.quantifier in ("all", "both", "two", "three", "four", "five")
        or (head.endswith("s") and lemma(head) != head and head not in ("glass", "this"))
        or head in ("ones", "things", "objects", "items", "pieces", "toys", "others", "everything")
        or len(np.colours) > 1
        or (np.other and not np.content)
    )


def _finish_pronoun(np: NounPhrase) -> None:
    if not np.colours and len(np.content) == 1 and np.content[0] in lx.PRONOUNS and not np.other:
        np.pronoun = np.content[0]
        np.plural = np.pronoun in lx.PLURAL_PRONOUNS or np.quantifier is not None
        np.content = []
        return
    content = [w for w in np.content if w not in ("one", "same")]
    if np.colours or content:
        return
    if not np.content and np.determiner in ("that", "this", "these", "those") and np.quantifier is None:
        np.pronoun = np.determiner
        np.plural = np.determiner in lx.PLURAL_PRONOUNS
    elif np.content and np.determiner in ("that", "this", "the") and not np.other and np.quantifier is None:
        np.pronoun = "it"  # "that one", "the same one"


def _attach_exclusions(chunks: list[Chunk]) -> list[Chunk]:
    """Fold "except NP" into the noun phrase before it, and "that is in X" into a filter."""
    out: list[Chunk] = []
    mode = ""
    for chunk in chunks:
        if chunk.kind in ("except", "rel"):
            mode = chunk.kind
            continue
        target = next((c.np for c in reversed(out) if c.kind == "np" and c.np is not None), None)
        if mode == "except" and chunk.kind == "np" and target is not None and chunk.np is not None:
            target.exclude.append(chunk.np)
            continue
        if mode == "rel" and chunk.kind in ("pp", "state") and target is not None:
            target.filters.append(chunk)
            mode = ""
            continue
        if chunk.kind != "conj":
            mode = ""
        out.append(chunk)
    return out
