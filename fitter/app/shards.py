"""One batch split over N independent runs (SLURM array tasks, Kubernetes indexed jobs), no Ray needed.

An input belongs to shard ``sha256(key) mod N``, where ``key`` is its path relative to the common folder of
all the batch's inputs, with ``/`` separators: the same on every node that sees the same files, whatever
the mount point, and independent of the order the inputs were listed in. Each input lands in exactly one
shard, so the N shards together fit the batch once. Shards share the output folder: a shard writes
``summary.shard-K-of-N.json`` (never ``summary.json``) and tidies only its own faces' leftovers;
``facefit summarize OUT`` merges the shards' summaries (:mod:`fitter.app.summaries`).
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

_SUMMARY_NAME = re.compile(r"^summary\.shard-(?P<index>\d+)-of-(?P<count>\d+)\.json$")
_HASH_BYTES = 8  # of the SHA-256: 64 bits spread any N a batch could use evenly


class ShardError(ValueError):
    """A shard written wrongly. ``str(err)`` is one line: what was given, what is expected."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (numbered from 0, like SLURM_ARRAY_TASK_ID with --array=0-N-1 and
    Kubernetes' JOB_COMPLETION_INDEX)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` -> Shard(K, N)."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not m:
            raise ShardError(f"shard {text!r} is not K/N; write e.g. 0/4 for the first of four shards")
        index, count = int(m.group(1)), int(m.group(2))
        if count < 1 or index >= count:
            raise ShardError(f"shard {text!r}: K must be 0 to N-1 and N at least 1 (shards are numbered from "
                             f"0, e.g. 0/{max(count, 2)} .. {max(count, 2) - 1}/{max(count, 2)})")
        return cls(index, count)

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def summary_name(self) -> str:
        return f"summary.shard-{self.index}-of-{self.count}.json"

    def holds(self, path: Path, root: Path) -> bool:
        return shard_of(shard_key(path, root), self.count) == self.index


def parse_summary_name(name: str) -> Shard | None:
    """The shard whose summary file this is (``summary.shard-1-of-4.json`` -> 1/4), or None."""
    m = _SUMMARY_NAME.match(name)
    if not m or int(m.group("index")) >= int(m.group("count")):
        return None
    return Shard(int(m.group("index")), int(m.group("count")))


def input_root(paths: list[Path]) -> Path:
    """The deepest folder that holds every input."""
    folders = [os.path.dirname(os.path.abspath(p)) for p in paths]
    return Path(os.path.commonpath(folders)) if folders else Path.cwd()


def shard_key(path: Path, root: Path) -> str:
    """``path`` relative to ``root``, ``/``-separated: what decides its shard."""
    return Path(os.path.relpath(os.path.abspath(path), root)).as_posix()


def shard_of(key: str, count: int) -> int:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:_HASH_BYTES], "big") % count
