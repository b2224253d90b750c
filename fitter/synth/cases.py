"""The entry points of synthetic face photos: sample a case with a look (``clean`` or ``wild``) and render it.

``clean`` renders with the fitter's own image model (fitter.synth.scenes); ``wild`` adds what the fitter
cannot represent (fitter.synth.wild). Both share the same random face, pose and camera for a (seed, index).
"""
from __future__ import annotations

import numpy as np

from ..model.morphable import MorphableModel
from .scenes import (
    APPEARANCES,
    RenderedCase,
    SyntheticCase,
    render_clean_case,
    sample_clean_case,
)
from .wild import frame_small_face, render_wild, sample_wild


def sample_case(model: MorphableModel, index: int, seed: int, size: int = 512, detail: bool = True,
                appearance: str = "clean", without: tuple[str, ...] = (),
                identity: np.ndarray | None = None) -> SyntheticCase:
    """A random face, pose, camera, appearance, light and (with ``detail``) wrinkles, from (seed, index).

    ``appearance="wild"`` keeps the same face, pose and camera and adds the wild effects
    (:func:`fitter.synth.wild.sample_wild`; ``without`` leaves named ones out); a small-face effect moves the
    face away from the camera. ``identity`` replaces the drawn one before the effects are placed (one person
    seen in many cases); everything else is drawn as without it."""
    if appearance not in APPEARANCES:
        raise ValueError(f"unknown appearance {appearance!r}; choose one of {', '.join(APPEARANCES)}")
    case = sample_clean_case(model, index, seed, size, detail)
    if identity is not None:
        case.identity = np.asarray(identity, np.float32)
    if appearance == "wild":
        case.appearance = "wild"
        case.effects = sample_wild(model, case, seed, index, tuple(without))
        small = next((e for e in case.effects if e.name == "small_face"), None)
        if small is not None:
            frame_small_face(model, case, small.params["face_width_px"])
    return case


def render_case(model: MorphableModel, case: SyntheticCase, supersample: int = 2) -> RenderedCase:
    """Render a case to an 8-bit photo (antialiased by supersampling) plus ground-truth fragments."""
    if case.appearance == "wild":
        return render_wild(model, case, supersample)
    return render_clean_case(model, case, supersample)
