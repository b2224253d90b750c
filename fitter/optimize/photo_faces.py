"""Which face of a group photo is the person of a `--subject` photo folder.

A folder of one person's photos may hold photos with other people in them, and the largest face of such a photo
is not always the person's. Every face of the folder gets an identity of its own from the preset's landmark-only
photo stages (as the folder's leave-one-out check does, fitter.optimize.subject.photo_identities) and is compared
with the mean identity of the other photos' chosen faces (neutral, similarity-aligned: fitter.optimize.
shot_identity). A photo with several faces keeps its largest unless that one looks like someone else (further
than ``limit`` mm from the others): then its face nearest the others is fitted. Switching only then keeps the
common case (the person is the largest face) as it was: one person's photos lie 0.11-0.70 mm apart, another
person's median 1.0 mm (docs/video.md). A photo the person is not in keeps a stranger's face either way, and the
folder's leave-one-out check names it afterwards."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..model.morphable import MorphableModel
from ..observe.types import FaceObservation
from .fit import fit_face
from .schedule import NonFiniteFit
from .shot_identity import identity_distances_mm, landmark_stages

ROUNDS = 3  # a choice changes the others' mean: repeat until no photo changes its face


@dataclass
class FaceChoice:
    chosen: list[int]  # per photo: the index of the face fitted (0, the largest, unless switched)
    distances: list[list[float]] = field(default_factory=list)  # per photo with several faces: each face's mm


def choose_faces(model: MorphableModel, preset: dict, photos: list[list[FaceObservation]],
                 sizes: list[tuple[int, int]], exifs: list[float | None], limit: float) -> FaceChoice:
    """Per photo (its faces largest first, possibly none), which face is the folder's person. Costs one
    landmark-only fit per face of the folder, and only when some photo shows several faces."""
    chosen = [0] * len(photos)
    distances: list[list[float]] = [[] for _ in photos]
    present = [k for k, faces in enumerate(photos) if faces]
    several = [k for k in present if len(photos[k]) > 1]
    stages = landmark_stages(preset["stages"])
    if not several or len(present) < 2 or not stages or not limit:
        return FaceChoice(chosen, distances)
    landmarks_only = dict(preset, stages=stages)
    identity = {}
    for k in present:
        for j, face in enumerate(photos[k]):
            try:
                identity[(k, j)] = fit_face(model, face, sizes[k], landmarks_only, exifs[k]).state.identity.detach()
            except NonFiniteFit:  # a face that cannot be fitted is not chosen (nor compared with)
                continue
    for _ in range(ROUNDS):
        changed = False
        for k in several:
            others = [identity[(m, chosen[m])] for m in present if m != k and (m, chosen[m]) in identity]
            faces = [j for j in range(len(photos[k])) if (k, j) in identity]
            if not others or (k, 0) not in identity:
                continue
            d = identity_distances_mm(model, [torch.stack(others).mean(0)] + [identity[(k, j)] for j in faces])[1:]
            distances[k] = [float("nan")] * len(photos[k])
            for j, value in zip(faces, d):
                distances[k][j] = value
            nearest = faces[int(np.argmin(d))]
            pick = nearest if distances[k][0] > limit else 0
            changed |= pick != chosen[k]
            chosen[k] = pick
        if not changed:
            break
    return FaceChoice(chosen, distances)
