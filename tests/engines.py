"""Helpers for the engine tests (tests/app/): a small batch to fit, and the parts of summaries to compare."""
from __future__ import annotations

import shutil
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from paths import EXAMPLES

CORRUPT = "corrupt.jpg"  # a JPEG header and nothing else: one failed line, never a face folder


def small_batch(folder: Path, copies: dict[str, str]) -> Path:
    """``folder`` holding example photos under new names (``{"a.png": "Bryan.png"}``) and one corrupt file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, example in copies.items():
        shutil.copy(EXAMPLES / example, folder / name)
    (folder / CORRUPT).write_bytes(b"\xff\xd8\xff\xe0 a truncated jpeg")
    return folder


def face_rows(summary: dict) -> list[tuple]:
    """(folder, status, rmse_px, nme) per face, in the summary's order."""
    return [(f["folder"], f["status"], f["rmse_px"], f["nme"]) for f in summary["faces"]]


def failed_names(summary: dict) -> list[str]:
    return sorted(Path(f["input"]).name for f in summary["failed"])


def hidden_entries(out: Path) -> list[str]:
    """Temporaries and staging folders left in an output folder."""
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


@contextmanager
def deadline(seconds: int, what: str) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``: a batch whose workers
    can never be placed again would wait for ever."""

    def expire(signum, frame):
        raise TimeoutError(f"{what} did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
