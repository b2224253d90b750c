"""Do the shots of a clip show one person? Each shot's own identity, read from a few of its frames.

A clip is fitted with one identity. When cuts split it into segments (fitter.optimize.subject), each segment
with enough detected frames gets an identity of its own from the preset's landmark-only photo stages (the
stages whose terms need neither photos nor part masks: cheap, and blind to lighting that changes with the
shot), and the neutral faces are compared after a similarity alignment, as `facefit bench consistency`
compares speakers. With `fast`, a GRID speaker's clip whose second half has another colour grade differs by
0.30-0.35 mm between its shots, two GRID speakers spliced by 1.02-1.08 mm (docs/video.md has more)."""
from __future__ import annotations

import numpy as np
import torch

from ..energy.base import registered_terms
from ..metrics import rms_mm, similarity_align
from ..model.morphable import MorphableModel, neutral_face

REGION = "face"


def landmark_stages(stages: list[dict]) -> list[dict]:
    """The stages whose weighted terms need neither photos nor part masks."""
    specs = registered_terms()
    return [stage for stage in stages
            if not any(float(w) and name in specs and specs[name].needs for name, w in stage["weights"].items())]


def shot_instants(segments: np.ndarray, detected: np.ndarray, least: int, most: int) -> dict[int, list[int]]:
    """Per segment with at least ``least`` detected instants: up to ``most`` of them, evenly spaced."""
    out = {}
    for segment in np.unique(segments):
        members = np.flatnonzero((segments == segment) & detected)
        if len(members) >= least:
            picks = np.unique(np.round(np.linspace(0, len(members) - 1, min(most, len(members)))).astype(int))
            out[int(segment)] = [int(members[p]) for p in picks]
    return out


def identity_distances_mm(model: MorphableModel, identities: list[torch.Tensor]) -> list[float]:
    """RMS distance (mm) of each identity's aligned neutral face from the first one's."""
    region = model.topology.region(REGION)
    faces = [neutral_face(model, i.reshape(1, -1), region) for i in identities]
    return [rms_mm(similarity_align(f, faces[0]), faces[0]) for f in faces]
