"""Helpers for tests: ground-truth states and their projected landmarks."""
from __future__ import annotations

import numpy as np
import torch

from fitter.energy.landmarks import landmark_embedding
from fitter.observe.types import FaceObservation
from fitter.scene import Scene
from fitter.state import FitState


def ground_truth(model, yaw: float = 0.3, size=(512, 512), focal: float = 1100.0, seed: int = 0,
                 expression: dict[str, float] | None = None) -> FitState:
    g = torch.Generator().manual_seed(seed)
    gt = FitState.single(model.num_identity, model.num_expression, size, focal)
    gt.identity = torch.randn(model.num_identity, generator=g)
    e = torch.zeros(1, model.num_expression)
    for name, value in (expression or {"jawOpen": 0.4, "mouthSmile_L": 0.6}).items():
        e[0, model.expression_names.index(name)] = value
    gt.expression = e
    gt.rotation = torch.tensor([[0.1, yaw, 0.05]])
    gt.translation = torch.tensor([[1.0, -2.0, 65.0]])
    return gt


def observe(model, gt: FitState, landmark_format: str = "mediapipe478", noise_px: float = 0.5,
            seed: int = 0) -> FaceObservation:
    scene = Scene(model, gt)
    emb = landmark_embedding(model, landmark_format)
    corners = torch.as_tensor(model.topology.triangles[emb.triangles])
    pts = (scene.vertices()[:, corners] * torch.as_tensor(emb.barycentrics)[None, :, :, None]).sum(2)
    pix, cam = scene.project(pts)
    pix, cam = pix[0].numpy(), cam[0].numpy()
    pix = pix + np.random.default_rng(seed).normal(0, noise_px, pix.shape)
    lo, hi = pix.min(0), pix.max(0)
    # MediaPipe's depth: relative to the face centre, in pixels (scaled like x), growing away from the camera
    centre = cam[:, 2].mean()
    depth = (cam[:, 2] - centre) * float(gt.focal()[0]) / centre
    return FaceObservation(landmarks=pix, landmark_format=landmark_format, bbox=np.r_[lo, hi], landmarks_z=depth)
