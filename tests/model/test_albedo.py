"""The albedo basis (fitter.model.albedo): ICT's shipped basis and one computed for another model. Mode 0 is
the constant 1, modes are orthogonal over the surface, the mirror map is an involution that flips x, and
coefficients round-trip through per-vertex albedo."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.model.albedo import albedo_basis
from small_models import dome_model

MODES = 20


def vertex_areas(model, vertices: np.ndarray) -> np.ndarray:
    """Each basis vertex's share (a third) of the area of the triangles around it, on the mean shape."""
    topo = model.topology
    inside = np.zeros(topo.num_vertices, bool)
    inside[vertices] = True
    tris = topo.triangles[inside[topo.triangles].all(1)]
    p = model.mean.numpy().astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(p[tris[:, 1]] - p[tris[:, 0]], p[tris[:, 2]] - p[tris[:, 0]]), axis=1)
    out = np.zeros(topo.num_vertices)
    for k in range(3):
        np.add.at(out, tris[:, k], area / 3)
    return out[vertices]


@pytest.fixture(scope="module")
def dome():
    model = dome_model(n=15)
    model.topology.regions["face"] = np.ones(model.num_vertices, bool)
    return model


@pytest.fixture(params=["ict", "dome"])
def model_and_basis(request, ict, dome):
    model = ict if request.param == "ict" else dome
    return model, albedo_basis(model, MODES if request.param == "ict" else 8)


class TestModes:
    """Mode 0 is the constant 1 (its coefficient is the mean albedo); the modes are orthogonal over the surface,
    in order of smoothness."""

    def test_constant_mode(self, model_and_basis):
        _, basis = model_and_basis
        torch.testing.assert_close(basis.basis[:, 0], torch.ones(len(basis.vertices)))
        assert float(basis.eigenvalues[0]) == pytest.approx(0.0, abs=1e-6)
        assert bool((basis.eigenvalues[1:] >= basis.eigenvalues[:-1] - 1e-9).all())

    def test_orthogonal_over_the_surface(self, model_and_basis):
        model, basis = model_and_basis
        area = vertex_areas(model, basis.vertices.numpy())
        b = basis.basis.numpy().astype(np.float64)
        gram = (b * area[:, None]).T @ b / area.sum()
        off = gram - np.diag(np.diag(gram))
        assert np.abs(off).max() < 1e-3 * np.diag(gram).min()

    def test_unit_rms_over_vertices(self, model_and_basis):
        _, basis = model_and_basis
        b = basis.basis.numpy().astype(np.float64)
        np.testing.assert_allclose(np.sqrt((b**2).mean(0)), 1.0, rtol=1e-4)


class TestMirror:
    """mirror pairs each vertex with its left/right partner: an involution that flips the model's x."""

    def test_involution(self, model_and_basis):
        model, basis = model_and_basis
        mirror = basis.mirror
        assert torch.equal(mirror[mirror], torch.arange(len(mirror)))
        p = model.mean[basis.vertices]
        flipped = p[mirror] * torch.tensor([-1.0, 1.0, 1.0])
        assert float((flipped - p).norm(dim=-1).max()) < 0.05  # cm: partners are mirror images


class TestPerVertex:
    """constant() and per_vertex() round-trip: a colour comes back at every covered vertex, the fill elsewhere,
    and any coefficients are recovered from their per-vertex albedo."""

    def test_constant_colour(self, model_and_basis):
        model, basis = model_and_basis
        colour = torch.tensor([0.6, 0.45, 0.3])
        albedo = basis.per_vertex(basis.constant(colour), model.num_vertices, fill=0.25)
        assert albedo.shape == (model.num_vertices, 3)
        covered = torch.zeros(model.num_vertices, dtype=torch.bool)
        covered[basis.vertices] = True
        torch.testing.assert_close(albedo[covered], colour.expand(int(covered.sum()), 3))
        assert bool((albedo[~covered] == 0.25).all())

    def test_coefficients_round_trip(self, model_and_basis):
        model, basis = model_and_basis
        coeffs = torch.randn(basis.modes, 3) * 0.1
        albedo = basis.per_vertex(coeffs, model.num_vertices)[basis.vertices]
        recovered = torch.linalg.lstsq(basis.basis.double(), albedo.double()).solution
        torch.testing.assert_close(recovered.float(), coeffs, atol=1e-5, rtol=1e-4)
