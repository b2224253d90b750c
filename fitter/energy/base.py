"""What every energy term looks like, and the registry the fitting driver finds terms in.

A term is one module in this package: a class deriving from :class:`Term` (per-frame values (F,) for a
scene, optional hooks the schedule calls) and one :func:`register` call declaring its name, its preset
section's settings, the stage keys it reads, the evidence it needs and a builder. The driver builds the
terms that the preset's stages weigh by name; nothing else names a term. A term never knows about other
terms; the stage multiplies it by the preset's weight. Values are negative log-likelihood-like: a well-fitted
term is O(number of its residuals), so preset weights near 1 are meaningful.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..common.settings import Setting
from ..evidence import Evidence
from ..model.morphable import MorphableModel
from ..scene import Scene

# Lengths in pixels or texels given in presets refer to a crop (or map) of this size and scale with the size
# a stage works at, so one setting means the same at every level of a coarse-to-fine pyramid.
REFERENCE_SIZE = 512


class Term:
    """Base of every energy term. Subclasses set ``name`` and implement ``__call__``; the hooks are optional."""

    name: str = ""

    def __call__(self, scene: Scene) -> torch.Tensor:
        """Per-frame energy (F,) for the scene's state."""
        raise NotImplementedError

    def configure(self, stage: dict) -> None:
        """Called before every stage that weighs the term: per-stage settings (e.g. render resolution)."""

    def initialise(self, scene: Scene) -> None:
        """Called once, before the first stage that weighs the term: fill state it needs (e.g. lighting)."""

    def update(self, scene: Scene) -> None:
        """Called before every optimiser round: discrete choices (visibility sets, contour points)."""

    def diagnostics(self, scene: Scene) -> dict[str, list[float]]:
        """Per-frame quantities worth reporting beside the energy (e.g. an outlier fraction)."""
        return {}

    def qa_images(self, scene: Scene) -> dict[str, np.ndarray]:
        """Images a person checking the fit may want (e.g. where the photo was not explained), by name."""
        return {}


class TermUnavailable(RuntimeError):
    """A builder cannot make its term from this evidence or model (the message says why, for the report)."""


@dataclass
class TermContext:
    """What a builder may use: the model, the subject's evidence, the whole preset and the camera guess."""

    model: MorphableModel
    evidence: Evidence
    preset: dict
    focal_guess: list[float]  # per view, pixels

    def section(self, name: str) -> dict:
        return dict(self.preset.get(name, {}))

    @property
    def device(self) -> torch.device:
        return self.model.device


@dataclass(frozen=True)
class TermSpec:
    name: str
    build: Callable[[TermContext], Term]  # may raise TermUnavailable
    settings: dict[str, Setting] = field(default_factory=dict)  # keys of the preset section [name]
    stage_settings: dict[str, Setting] = field(default_factory=dict)  # stage keys the term reads (configure)
    needs: tuple[str, ...] = ()  # evidence every frame must carry: "photo", "masks"
    doc: str = ""


_REGISTRY: dict[str, TermSpec] = {}


def register(spec: TermSpec) -> TermSpec:
    if spec.name in _REGISTRY and _REGISTRY[spec.name].build is not spec.build:
        raise ValueError(f"two energy terms are registered as {spec.name!r}")
    _REGISTRY[spec.name] = spec
    return spec


def registered_terms() -> dict[str, TermSpec]:
    """Every term of this package, by name (each module of fitter.energy registers its own on import)."""
    package = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{info.name}")
    return dict(_REGISTRY)


# -- robust losses shared by the data terms ---------------------------------------------------------------
def pseudo_huber(x: torch.Tensor, delta: float) -> torch.Tensor:
    """Robust loss: x**2 for |x| << delta, growing like 2 * delta * |x| beyond it."""
    return 2.0 * delta * delta * (torch.sqrt(1.0 + (x / delta) ** 2) - 1.0)


def cauchy(x: torch.Tensor, delta: float) -> torch.Tensor:
    """Redescending robust loss: x**2 for |x| << delta, delta**2 log(1 + (x / delta)**2) beyond; a residual far
    beyond the knee (an albedo edge, a misplaced feature) pulls with a force that falls like 1 / |x|."""
    return delta * delta * torch.log1p((x / delta) ** 2)


def geman_mcclure(x: torch.Tensor, delta: float) -> torch.Tensor:
    """Saturating robust loss: x**2 for |x| << delta, tending to delta**2 beyond it; a residual far past the
    knee costs about the same wherever it is, so it exerts (almost) no pull."""
    x2 = x * x
    return delta * delta * x2 / (x2 + delta * delta)


def spread_over_frames(value: torch.Tensor, frames: int) -> torch.Tensor:
    """A subject-wide scalar as per-frame values (F,) that sum to it (priors on shared parameters)."""
    return value.expand(frames) / frames
