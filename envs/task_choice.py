"""Choosing an episode's task and a layout in which it is feasible (a push needs a clear path).

`HouseholdEnv.reset` calls `choose_task` with its own random generator; every draw happens here in a
fixed order, so the same seed gives the same task, arguments and layout.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from envs.errors import InputError
from envs.scene import SPECS, KitchenScene
from envs.tasks import DIRECTIONS, TASK_NAMES, TaskSpec, sample_task, valid_arguments

TASK_CHOICES = (*TASK_NAMES, "any", "none")
Layout = dict[str, tuple[float, float, float]]


def check_choice(what: str, value: Any, choices: tuple) -> None:
    """Raise a ValueError naming the choices when `value` is not one of them."""
    if value not in choices:
        raise InputError(f"unknown {what} {value!r}; expected one of: {', '.join(map(str, choices))}")


def choose_task(options: dict[str, Any], default: str, scene: KitchenScene, rng: np.random.Generator
                ) -> tuple[TaskSpec | None, Layout]:
    """The episode's task (None for free play) and a layout in which it is feasible.

    Args:
        options: reset options; `task` overrides `default`, `args` fixes the task's arguments.
        default: the env's task name (a task, "any" or "none").
        scene: samples layouts.
        rng: the env's random generator.
    """
    name = options.get("task", default)
    check_choice("task", name, TASK_CHOICES)
    if name == "any":
        name = TASK_NAMES[int(rng.integers(len(TASK_NAMES)))]
    if "args" in options:
        if name == "none":
            raise InputError("task 'none' takes no arguments")
        spec = TaskSpec(name, tuple(options["args"]))
        for _ in range(100):
            layout = scene.sample_layout(rng)
            if spec.name != "push" or push_path_clear(layout, *spec.args):
                break
        return spec, layout
    layout = scene.sample_layout(rng)
    if name == "none":
        return None, layout
    if name != "push":
        return sample_task(name, rng), layout
    for _ in range(100):
        feasible = [args for args in valid_arguments("push") if push_path_clear(layout, *args)]
        if feasible:
            return TaskSpec("push", feasible[int(rng.integers(len(feasible)))]), layout
        layout = scene.sample_layout(rng)
    raise RuntimeError("could not find a layout with room to push any block")


def push_path_clear(layout: Layout, name: str, direction: str) -> bool:
    """Room to approach from behind and push ~14 cm without hitting another object or leaving the table."""
    unit = DIRECTIONS[direction]
    start = np.array(layout[name][:2])
    for t in np.linspace(-0.09, 0.15, 9):
        point = start + t * unit
        if not (0.25 < point[0] < 0.72 and -0.40 < point[1] < 0.09):
            return False
        for other, (x, y, _) in layout.items():
            if other != name and math.hypot(point[0] - x, point[1] - y) < SPECS[other].footprint + 0.045:
                return False
    return True
