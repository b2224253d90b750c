"""Errors of fitter.observe."""
from __future__ import annotations


class MissingWeightsError(RuntimeError):
    """A detector's weight file is not on disk. The message is one line: which file, where it must go.

    facefit never downloads weights; ``path`` is where the file was looked for.
    """

    def __init__(self, what: str, path, url: str = "") -> None:
        self.path = str(path)
        self.url = url
        where = f"download it from {url} on a machine with internet and copy it there" if url else "copy it there"
        super().__init__(
            f"{what} needs the weight file {self.path} which is missing; {where} "
            "(or set TORCH_HOME to the folder that holds hub/checkpoints/)"
        )


class DetectorUnavailableError(RuntimeError):
    """A detector's Python package is not importable (one line saying which and how to install it)."""
