"""What a wild render applied, and the random stream each effect draws from.

Every effect of the wild appearance is sampled from its own generator seeded by (seed, case index, effect
name), so a case is reproducible, and removing or adding one effect (``without=``) leaves every other
effect's parameters as they were: the same face with and without JPEG differs by the JPEG alone.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

# Separates the wild appearance's generators from sample_case's own (seeded by [seed, index] and
# [seed, index, 3] for the wrinkles).
WILD_STREAM = 7001

# Effect families, as reported in bench.json and docs/benchmark.md.
FAMILIES = ("lighting", "reflectance", "shadow", "albedo", "hair", "occluder", "scene", "background", "camera",
            "framing")


@dataclass
class Effect:
    """One applied effect: a name (``jpeg``), its family (``camera``) and JSON-ready parameters."""

    name: str
    family: str
    params: dict = field(default_factory=dict)

    def record(self) -> dict:
        return {"name": self.name, "family": self.family, "params": _plain(self.params)}


def effect_rng(seed: int, index: int, name: str) -> np.random.Generator:
    """The generator of one effect of one case."""
    return np.random.default_rng([int(seed), int(index), WILD_STREAM, zlib.crc32(name.encode())])


def find(effects: list[Effect], name: str) -> Effect | None:
    """The effect called ``name``, or None when the case does not have it."""
    return next((e for e in effects if e.name == name), None)


def _plain(value):
    """Numbers, lists and dicts only (numpy scalars and arrays converted), rounded for a readable record."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in np.asarray(value, dtype=object).tolist()] if isinstance(value, np.ndarray) \
            else [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 4)
    return value
