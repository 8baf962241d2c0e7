"""Natural-language instructions for tasks, sampled from templates with real variety.

The phrasings deliberately mix synonyms, word orders and politeness so that a policy conditioned on
the sentence's embedding cannot latch onto one fixed string per task.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

OBJECT_PHRASES: dict[str, tuple[str, ...]] = {
    "red_block": ("red block", "red cube", "red brick"),
    "green_block": ("green block", "green cube", "green brick"),
    "blue_block": ("blue block", "blue cube", "blue brick"),
    "yellow_block": ("yellow block", "yellow cube", "yellow brick"),
    "mug": ("mug", "cup", "coffee mug"),
    "bowl": ("bowl", "round bowl", "basin"),
    "plate": ("plate", "dish", "serving plate"),
    "drawer": ("drawer",),
    "table": ("table", "counter", "table top"),
}

DIRECTION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("to the left", "left", "leftwards"),
    "right": ("to the right", "right", "rightwards"),
    "forward": ("forward", "away from you", "away from the robot"),
    "backward": ("backward", "towards you", "toward the robot"),
}

TEMPLATES: dict[str, tuple[str, ...]] = {
    "reach": (
        "reach the {x}", "move your gripper to the {x}", "touch the {x}", "go to the {x}",
        "put your hand next to the {x}", "reach for the {x}", "move to the {x}, please",
    ),
    "pick": (
        "pick up the {x}", "grab the {x}", "lift the {x}", "take the {x}", "please pick the {x} up",
        "could you lift up the {x}?", "the {x}: pick it up",
    ),
    "place_in": (
        "put the {x} in the {y}", "place the {x} into the {y}", "drop the {x} in the {y}",
        "move the {x} into the {y}", "the {x} goes in the {y}", "please put the {x} inside the {y}",
    ),
    "place_on": (
        "put the {x} on the {y}", "place the {x} on top of the {y}", "stack the {x} on the {y}",
        "set the {x} down on the {y}", "move the {x} onto the {y}",
    ),
    "push": (
        "push the {x} {d}", "slide the {x} {d}", "nudge the {x} {d}", "shove the {x} {d}",
        "push the {x} a little {d}",
    ),
    "open": ("open the drawer", "pull the drawer open", "slide the drawer out", "please open the drawer"),
    "close": ("close the drawer", "shut the drawer", "push the drawer closed", "slide the drawer shut"),
}


def canonical_instruction(task: str, args: Sequence[str]) -> str:
    """The first template with the first phrase of each argument: stable text for a skill call."""
    return _fill(TEMPLATES[task][0], task, args, lambda options: options[0])


def sample_instruction(task: str, args: Sequence[str], rng: np.random.Generator) -> str:
    """A random phrasing of the task."""
    template = TEMPLATES[task][int(rng.integers(len(TEMPLATES[task])))]
    return _fill(template, task, args, lambda options: options[int(rng.integers(len(options)))])


def _fill(template: str, task: str, args: Sequence[str], choose) -> str:
    values: dict[str, str] = {}
    if task == "push":
        values = {"x": choose(OBJECT_PHRASES[args[0]]), "d": choose(DIRECTION_PHRASES[args[1]])}
    elif task in ("reach", "pick"):
        values = {"x": choose(OBJECT_PHRASES[args[0]])}
    elif task in ("place_in", "place_on"):
        values = {"x": choose(OBJECT_PHRASES[args[0]]), "y": choose(OBJECT_PHRASES[args[1]])}
    return template.format(**values)
