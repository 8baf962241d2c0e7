"""The agent package's exceptions: input errors (what the CLI reports as bad input, exit 2) and `PlanningError`.

`InputError` / `UnknownNameError` are the same classes every library package carries (the packages may not
import each other; the CLI recognises them by their `input_error` mark). `PlanningError` is an InputError, and it
carries the phrase of the instruction that could not be grounded so callers can show or log it.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the person or file at the other end: a value out of range, a malformed file, a bad name.

    It is a `ValueError`, so callers that catch ValueError keep working. The class attribute `input_error`
    is the mark the `embodia` CLI looks for: such errors become one line on stderr and exit code 2, while a
    plain ValueError, KeyError or TypeError raised from deeper code is treated as a bug (traceback, exit 3).
    """

    input_error = True


class UnknownNameError(InputError, KeyError):
    """A name that is not one of the known ones (a variable, an object, a task); also a `KeyError`."""

    def __str__(self) -> str:
        """The message itself, without the quotes KeyError puts around it."""
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class InputTypeError(InputError, TypeError):
    """A value of the wrong kind in an input file (a list where an object belongs); also a `TypeError`."""


class PlanningError(InputError):
    """An instruction the planner refuses: a phrase it cannot ground, or a goal it cannot reach.

    Attributes:
        phrase: The part of the instruction that caused the refusal, as the person typed it
            (lower-cased); the whole instruction when no smaller part is to blame.
    """

    def __init__(self, message: str, phrase: str) -> None:
        super().__init__(message)
        self.phrase = phrase


class UnrunnableCallError(RuntimeError):
    """A skill call the world cannot start in the scene as it now is, e.g. a place with nothing to place.

    Not bad input: the planner chose the call from facts that were wrong or incomplete (a pick that reported
    success without a grasp, a perception slip), so the agent records a failed step with this message as its
    reason and replans, as after any other failed step, instead of ending the episode or an evaluation.
    """
