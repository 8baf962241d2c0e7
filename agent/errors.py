"""The agent package's own exception.

`PlanningError` is a `ValueError`, so the CLI reports it like any other bad input (exit code 2), and it
carries the phrase of the instruction that could not be grounded so callers can show or log it.
"""

from __future__ import annotations


class PlanningError(ValueError):
    """An instruction the planner refuses: a phrase it cannot ground, or a goal it cannot reach.

    Attributes:
        phrase: The part of the instruction that caused the refusal, as the person typed it
            (lower-cased); the whole instruction when no smaller part is to blame.
    """

    def __init__(self, message: str, phrase: str) -> None:
        super().__init__(message)
        self.phrase = phrase
