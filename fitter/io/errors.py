"""The one exception type of fitter.io: every message names the file, what is wrong and what to do."""
from __future__ import annotations

from ..common.errors import FileProblem


class ImageError(FileProblem):
    """An input image or video cannot be used (missing, unreadable, corrupt or of an unsupported kind).

    ``path`` is the offending file (or input string); ``str(err)`` is a complete, user-facing sentence
    ``"<path>: <problem> (<hint>)"``.
    """


class InputError(ImageError):
    """One or more command-line INPUTS could not be turned into image/video paths.

    ``problems`` lists ``(input, problem)`` pairs; the message lists them all, one per line.
    """

    def __init__(self, problems: list[tuple[str, str]], hint: str = "") -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:  # one problem, one line
            (inp, problem), = self.problems
            lines = [f"{inp}: {problem}" + (f" ({hint})" if hint else "")]
        else:
            lines = [f"{len(self.problems)} input(s) cannot be used:"]
            lines += [f"  {inp}: {problem}" for inp, problem in self.problems]
            if hint:
                lines.append(hint)
        Exception.__init__(self, "\n".join(lines))
        self.path = self.problems[0][0] if self.problems else ""
        self.problem = "; ".join(p for _, p in self.problems)
        self.hint = hint

    def __reduce__(self):
        return (type(self), (self.problems, self.hint))
