"""Instruction syntax: tokens, clause order, chunks (no embeddings involved)."""

from __future__ import annotations

import pytest

from agent.chunking import chunk_tokens, lemma, verb_lemma
from agent.parsing import parse_instruction, tokenize


def texts(instruction: str) -> list[str]:
    return [clause.text for clause in parse_instruction(instruction)]


def nps(instruction: str) -> list:
    return [c.np for clause in parse_instruction(instruction) for c in clause.chunks if c.kind == "np"]


def test_tokenize_expands_contractions_and_merges_phrases() -> None:
    assert tokenize("Don't put it on top of the mug!") == ["do", "not", "put", "it", "ontop", "the", "mug", "!"]
    assert tokenize("push it towards you") == ["push", "it", "backward"]
    assert tokenize("move it to the left of the bowl") == ["move", "it", "leftof", "the", "bowl"]
    assert tokenize("grab 2 blocks") == ["grab", "two", "blocks"]


def test_lemmas_of_inflected_action_words() -> None:
    assert [lemma(w) for w in ("grabbing", "placed", "putting", "blocks", "dishes", "took")] == [
        "grab", "place", "put", "block", "dish", "take"]
    assert verb_lemma("stacked") == "stack"
    assert verb_lemma("fridge") is None


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        ("pick up the mug and put it in the bowl", ["pick up the mug", "put it in the bowl"]),
        ("open the drawer, then close it", ["open the drawer", "close it"]),
        ("put the red block in the bowl after opening the drawer",
         ["opening the drawer", "put the red block in the bowl"]),
        ("Before you close the drawer, put the mug in it", ["put the mug in it", "you close the drawer"]),
        ("put the mug in the drawer but first open it", ["open it", "put the mug in the drawer"]),
        ("First open the drawer. Next, put the cup inside.", ["open the drawer", "put the cup inside"]),
        ("put the red and the blue block in the bowl", ["put the red and the blue block in the bowl"]),
        ("put the red, green and blue blocks on the plate", ["put the red green and blue blocks on the plate"]),
    ],
)
def test_clauses_come_out_in_execution_order(instruction: str, expected: list[str]) -> None:
    assert texts(instruction) == expected


def test_pronouns_keep_text_order_for_resolution() -> None:
    clauses = parse_instruction("Before you close the drawer, put the mug in it")
    assert [c.position for c in clauses] == [1, 0]


def test_politeness_is_not_part_of_the_action() -> None:
    (clause,) = parse_instruction("Could you please kindly grab the crimson cube for me?")
    assert clause.verb == "grab"
    (np,) = nps("Could you please kindly grab the crimson cube for me?")
    assert np.colours == ["red"] and np.content == ["cube"]


def test_unknown_action_word_before_an_object_is_taken_as_the_verb() -> None:
    (clause,) = parse_instruction("yo, chuck the red block in the bowl")
    assert clause.verb == "chuck"


def test_noun_phrase_parts() -> None:
    (np,) = nps("put all the blocks except the red one on the plate")
    assert np.quantifier == "all" and np.plural and [e.text for e in np.exclude] == ["the red one"]
    (np,) = nps("put the red and blue blocks on the plate")
    assert np.colours == ["red", "blue"] and np.plural
    (np,) = nps("move the purple cube")
    assert np.colours == ["other:purple"]
    (np,) = nps("pick up the lemon")
    assert np.colours == [] and np.content == ["lemon"]
    (np,) = nps("pick one of the blocks")
    assert np.count == 1 and not np.plural
    (np,) = nps("put the other blocks in the bowl")
    assert np.other and np.plural
    (np,) = nps("put that one in the bowl")
    assert np.pronoun == "it"


def test_relative_clause_becomes_a_filter() -> None:
    (clause,) = parse_instruction("move the block that is in the bowl to the plate")
    kinds = [c.kind for c in clause.chunks]
    assert kinds == ["np", "pp"]
    assert clause.chunks[0].np.filters[0].text == "in the bowl"


def test_directions_and_states_are_chunks() -> None:
    chunks = chunk_tokens(tokenize("the drawer open and the mug away from you"))
    assert [(c.kind, c.word) for c in chunks if c.kind != "np"] == [("state", "open"), ("conj", "and"),
                                                                    ("dir", "forward")]


def test_empty_and_filler_only_text_has_no_clauses() -> None:
    assert parse_instruction("") == []
    assert parse_instruction("please, thank you!") == []
