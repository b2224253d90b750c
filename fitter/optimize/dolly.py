"""The dolly: a change of the focal length that keeps the face's size in the image.

Focal length and depth are nearly one unknown in a photo: the face's image size fixes focal / depth, and only
perspective (how much nearer parts grow) tells them apart. A stage that frees ``log_focal`` alone moves the
face's size with every step, which the landmarks and outlines at once undo, so under Adam the focal barely moves
(docs/photometric.md: 477 -> 472 px on clips filmed at 310 px). With ``dolly = true`` each step of the focal
length by a factor k is followed by moving the head along the optical axis until its face's centroid is k times
as deep, as a camera operator dollies out while zooming in: the centroid keeps its pixel (f X / Z is unchanged)
and its scale (f / Z), so the step changes only the perspective and the optimiser can follow the weak evidence
for it.
"""
from __future__ import annotations

import torch

from ..model.morphable import MorphableModel
from ..scene import Scene
from ..state import FitState


def dolly_free(state: FitState, stage: dict) -> list[str]:
    """The parameters a stage frees: a dolly stage keeps a multi-view subject's focal lengths (its views share
    one head, so no single axis moves it; the focal would slide with the face's size as without the dolly)."""
    free = list(stage["free"])
    if stage.get("dolly") and state.multiview:
        free = [p for p in free if p != "log_focal"]
    return free


def dolly_translation(model: MorphableModel, state: FitState, previous_log_focal: torch.Tensor) -> None:
    """Move each image's head along the optical axis so that its face's centroid is deeper by the factor its
    view's focal length changed since ``previous_log_focal`` (V,). A multi-view subject's head is shared by its
    views, each with its own axis: it is left as it is (and :func:`dolly_free` keeps its focal lengths)."""
    if state.multiview:
        return
    with torch.no_grad():
        factor = (state.log_focal - previous_log_focal).exp()[state.frame_view]  # (F,)
        vertices = Scene(model, state).camera_vertices()  # (F, N, 3) camera frame
        if "face" in model.topology.regions:  # a model without regions (tests' height fields) is all face
            vertices = vertices[:, torch.as_tensor(model.topology.region("face"), device=state.device)]
        centroid = vertices.mean(dim=1)
        state.translation[:, 2] += (factor - 1.0) * centroid[:, 2]
