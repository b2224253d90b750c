"""The one shape of a user-facing file error: which file, what is wrong, what to do.

Each layer that reads user files has its own error type (``fitter.io.ImageError``, ``fitter.model.
ModelFormatError``) so callers can tell them apart; they all derive from :class:`FileProblem`, which keeps the
three parts as attributes and builds the one-line message from them.
"""
from __future__ import annotations

from pathlib import Path


class FileProblem(Exception):
    """A file (or input) facefit cannot use. ``path``, ``problem`` and ``hint`` are kept; ``str(err)`` is
    ``"<path>: <problem>"`` followed by the hint written as :attr:`HINT_FORMAT` says (nothing without a hint)."""

    HINT_FORMAT = " ({})"  # how the hint follows the problem; a subclass may write it as a sentence

    def __init__(self, path: str | Path, problem: str, hint: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        self.hint = hint
        super().__init__(f"{self.path}: {problem}" + (self.HINT_FORMAT.format(hint) if hint else ""))

    def __reduce__(self):
        """Pickle by the three parts (the default would call the class with the message alone), so the error
        crosses process boundaries (worker pools, Ray) intact."""
        return (type(self), (self.path, self.problem, self.hint))


def exception_line(exc: BaseException) -> str:
    """An unexpected exception as the detail of a one-line failure: its class name (without the module path a
    user cannot act on) and its message."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

