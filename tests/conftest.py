"""Shared fixtures: the ICT model is loaded once per test session."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.model import SurfaceEmbedding, load_ict
from small_models import in_float64


@pytest.fixture(scope="session")
def ict():
    return load_ict()


@pytest.fixture(scope="session")
def ict64(ict):
    """The ICT model evaluating in float64 (for gradcheck of terms that evaluate vertices)."""
    return in_float64(ict)


@pytest.fixture(scope="session")
def ict_random_embedding(ict):
    """The ICT model with a random 478-point face embedding standing in for MediaPipe's (for fitting tests)."""
    model = load_ict()
    rng = np.random.default_rng(0)
    face_tris = model.topology.triangles_in(model.topology.region("narrow_face"))
    tris = rng.choice(face_tris, 478, replace=False)
    bary = rng.dirichlet([2, 2, 2], 478).astype(np.float32)
    model.topology.embeddings["mediapipe478"] = SurfaceEmbedding(tris, bary)
    return model


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
