"""The cases of the memory-instruction benchmark: setup instructions that create a memory, then a probe.

Every case starts from a fresh scene (its seed); the setup instructions run first, in the same scene without
a reset, and the probe is the instruction that needs what they left in memory. A probe passes when the episode
succeeds (judged against the instruction's goal) and that goal is the one memory should have produced, or, for
a question, when the answer names the right place.
"""

from __future__ import annotations

from dataclasses import dataclass

COLOURS = ("red", "green", "blue", "yellow")


@dataclass(frozen=True)
class MemoryCase:
    """One chain.

    Attributes:
        kind: ``relative`` ("the block you put in the drawer"), ``back`` ("put it back where it was"),
            ``repeat`` ("do that again", "do the same with ..."), or ``question`` ("where did you put ...?").
        setup: Instructions that create the memory, run first.
        probe: The instruction that needs it.
        expect: Goal predicates the probe's goal must contain (e.g. ``"on(red_block, plate)"``).
        answer: Text the answer must contain (questions).
        pushes: ``(object, direction)`` the probe must have pushed successfully (repeated pushes).
        seed: Scene seed.
    """

    kind: str
    setup: tuple[str, ...]
    probe: str
    expect: tuple[str, ...] = ()
    answer: str = ""
    pushes: tuple[tuple[str, str], ...] = ()
    seed: int = 0


def _relative(seed0: int) -> list[MemoryCase]:
    cases = []
    probes = [("take out the block you put in the drawer", "drawer", "holding({a}_block)"),
              ("move the block you put in the bowl to the plate", "bowl", "on({b}_block, plate)"),
              ("put the block you put in the drawer on the plate", "drawer", "on({a}_block, plate)"),
              ("take the block you put in the bowl and put it in the drawer", "bowl", "in({b}_block, drawer)"),
              ("put the block that you placed in the bowl on the table", "bowl", "on({b}_block, table)")]
    for i in range(10):
        a, b = COLOURS[i % 4], COLOURS[(i + 1 + i // 4) % 4]
        probe, _place, expect = probes[i % len(probes)]
        cases.append(MemoryCase("relative", (f"put the {a} block in the drawer", f"put the {b} block in the bowl"),
                                probe, (expect.format(a=a, b=b),), seed=seed0 + i))
    return cases


def _back(seed0: int) -> list[MemoryCase]:
    cases = []
    for i in range(10):
        a = COLOURS[i % 4]
        if i % 3 == 0:
            setup = (f"put the {a} block in the bowl", f"move the {a} block to the plate")
            cases.append(MemoryCase("back", setup, f"put the {a} block back where it was",
                                    (f"in({a}_block, bowl)",), seed=seed0 + i))
        elif i % 3 == 1:
            setup = ("move the mug to the plate",) if i < 5 else ("put the mug in the bowl",)
            cases.append(MemoryCase("back", setup, "put the mug back where it was", ("on(mug, table)",),
                                    seed=seed0 + i))
        else:
            setup = (f"put the {a} block on the plate", f"put the {a} block in the bowl")
            cases.append(MemoryCase("back", setup, "put it back where it was", (f"on({a}_block, plate)",),
                                    seed=seed0 + i))
    return cases


def _repeat(seed0: int) -> list[MemoryCase]:
    cases = []
    for i in range(10):
        a, b = COLOURS[i % 4], COLOURS[(i + 2) % 4]
        if i % 2 == 0:
            target, relation = ("plate", "on") if i % 4 == 0 else ("bowl", "in")
            cases.append(MemoryCase("repeat", (f"put the {a} block {'on' if relation == 'on' else 'in'} the {target}",),
                                    f"do the same with the {b} block", (f"{relation}({b}_block, {target})",),
                                    seed=seed0 + i))
        else:
            direction = ("left", "right")[i // 2 % 2]
            cases.append(MemoryCase("repeat", (f"push the {a} block to the {direction}",), "do that again",
                                    (f"pushed({a}_block, {direction})",), pushes=((f"{a}_block", direction),),
                                    seed=seed0 + i))
    return cases


def _question(seed0: int) -> list[MemoryCase]:
    cases = []
    places = [("in the bowl", "in the bowl"), ("on the plate", "on the plate"), ("in the drawer", "in the drawer")]
    for i in range(6):
        place, answer = places[i % 3]
        thing = "mug" if i < 3 else f"{COLOURS[i % 4]} block"
        cases.append(MemoryCase("question", (f"put the {thing} {place}",), f"where did you put the {thing}?",
                                answer=f"I put the {thing} {answer}", seed=seed0 + i))
    return cases


def memory_cases(seed: int = 0) -> list[MemoryCase]:
    """The benchmark: 36 chains in four kinds, with scene seeds from `seed` on."""
    return [*_relative(seed), *_back(seed + 100), *_repeat(seed + 200), *_question(seed + 300)]
