"""Tiny real morphable models with analytic geometry, for unit tests of terms that render.

Each is a height field z = h(x, y) over a regular n x n grid of [-half, half]^2 cm, facing +z (towards the
camera at zero rotation), all of it face skin, with UVs u = (x + half) / 2 half, v = (y + half) / 2 half. One
identity mode tilts it (z += x) and one expression mode pushes its middle out (a bump), so shape gradients
have something to act on.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from fitter.model.albedo import AlbedoBasis
from fitter.model.morphable import MorphableModel
from fitter.model.topology import FACE_MATERIAL, Topology

TILT = 1.0  # identity mode 0: dz/dx
BUMP = 0.5  # expression mode 0: height of the bump at the centre (cm)


def grid_model(heights, half: float, n: int, name: str) -> MorphableModel:
    xs = np.linspace(-half, half, n)
    x, y = np.meshgrid(xs, xs)  # row i: y = xs[i]
    mean = np.stack([x, y, heights(x, y)], -1).reshape(-1, 3)
    idx = np.arange(n * n).reshape(n, n)
    quads = np.stack([idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]], -1).reshape(-1, 4)  # CCW from +z
    uvs = ((mean[:, :2] + half) / (2 * half)).astype(np.float32)
    topology = Topology(quads.astype(np.int32), quads.astype(np.int32), np.zeros(len(quads), np.int64),
                        [FACE_MATERIAL], uvs, n * n)
    tilt = np.zeros((1, n * n, 3))
    tilt[0, :, 2] = TILT * mean[:, 0]
    bump = np.zeros((1, n * n, 3))
    bump[0, :, 2] = BUMP * np.exp(-(mean[:, 0] ** 2 + mean[:, 1] ** 2) / (0.5 * half) ** 2)
    return MorphableModel(mean, tilt, bump, topology, name=name)


def plane_model(half: float = 4.0, n: int = 9) -> MorphableModel:
    """A flat square (one normal everywhere)."""
    return grid_model(lambda x, y: np.zeros_like(x), half, n, "plane")


def dome_model(radius: float = 4.0, n: int = 25) -> MorphableModel:
    """A spherical cap (apex at z = 0): normals up to ~80 degrees from the view direction."""
    half = 0.7 * radius
    return grid_model(lambda x, y: np.sqrt(radius**2 - x**2 - y**2) - radius, half, n, "dome")


def in_float64(model: MorphableModel) -> MorphableModel:
    """A copy of ``model`` (sharing its topology) that evaluates vertices in float64, for
    torch.autograd.gradcheck: float32 vertices would drown a finite difference in rounding."""
    out = copy.copy(model)
    out.mean = model.mean.double()
    out.identity_basis = model.identity_basis.double()
    out.expression_basis = model.expression_basis.double()
    return out


def uniform_albedo(model: MorphableModel, dtype=torch.float32) -> AlbedoBasis:
    """A one-mode albedo basis over every vertex: the coefficients (1, 3) are the colour itself."""
    n = model.num_vertices
    side = int(round(np.sqrt(n)))
    mirror = np.arange(n).reshape(side, side)[:, ::-1].reshape(-1)  # x -> -x on the grid
    return AlbedoBasis(vertices=torch.arange(n), basis=torch.ones(n, 1, dtype=dtype),
                       eigenvalues=torch.zeros(1, dtype=dtype), mirror=torch.as_tensor(mirror.copy()))
