"""Photos for tests of the photometric terms: linear images read back through PhotoTarget (sRGB-encoded, then
linearised, as a real photo is), and renders of a state by the fitter's own Lambertian image model."""
from __future__ import annotations

import numpy as np
import torch

from fitter.common.colour import linear_to_srgb
from fitter.crop import FitCrop
from fitter.energy.photo_target import PhotoTarget, PhotoTargets
from fitter.energy.photometric import PhotometricTerm
from fitter.scene import Scene
from small_models import uniform_albedo


def photo_targets(linear: list[np.ndarray], crops: list[FitCrop] | None = None) -> PhotoTargets:
    """One target per frame from linear-light photos (S, S, 3); each frame's fitting crop is ``crops[f]``, or
    the whole photo."""
    out = []
    for f, image in enumerate(linear):
        size = image.shape[0]
        crop = FitCrop(0.0, 0.0, float(size), size) if crops is None else crops[f]
        out.append(PhotoTarget.from_photo(linear_to_srgb(np.clip(image, 0, 1)).astype(np.float32), crop))
    return PhotoTargets(out)


def rendered(model, state, size: int) -> list[np.ndarray]:
    """Linear renders (size, size, 3) of every frame of ``state`` (albedo in a uniform_albedo basis, SH light,
    bump-mapped when the state has a displacement map); background 0."""
    blank = photo_targets([np.zeros((size, size, 3), np.float32)] * state.num_frames)
    term = PhotometricTerm(model, blank, uniform_albedo(model), resolution=size)
    with torch.no_grad():
        return list(term.render(Scene(model, state))["colour"].numpy())
