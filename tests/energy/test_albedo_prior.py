"""Unit tests of the albedo prior (fitter.energy.albedo_prior): smoothness, left/right symmetry and the skin-tone
prior, on a four-vertex basis small enough to compute by hand, and on ICT's basis."""
from __future__ import annotations

import pytest
import torch

from fitter.energy.albedo_prior import AlbedoPrior
from fitter.model.albedo import AlbedoBasis, albedo_basis
from fitter.scene import Scene
from fitter.state import FitState
from frames import assert_spread_evenly

SCALE = 0.02  # symmetry_scale
MEAN_SIGMA = 0.2


def four_vertex_basis() -> AlbedoBasis:
    """Vertices 0 <-> 1 and 2 <-> 3 are mirror pairs; mode 1 is antisymmetric, mode 2 symmetric."""
    basis = torch.tensor([[1.0, 1.0, 0.5], [1.0, -1.0, 0.5], [1.0, 1.0, -0.5], [1.0, -1.0, -0.5]])
    return AlbedoBasis(vertices=torch.arange(4), basis=basis, eigenvalues=torch.tensor([0.0, 2.0, 4.0]),
                       mirror=torch.tensor([1, 0, 3, 2]))


def state_with(albedo: torch.Tensor) -> FitState:
    state = FitState.single(2, 2, (64, 64), 500.0)
    state.albedo = albedo
    return state


def prior(smoothness=0.0, symmetry=0.0, mean_colour=None) -> AlbedoPrior:
    return AlbedoPrior(four_vertex_basis(), smoothness, symmetry, mean_colour, MEAN_SIGMA, SCALE)


class TestAlbedoPriorValue:
    """Each part on its own, computed by hand."""

    def test_smoothness_weighs_modes_by_relative_eigenvalue(self, ict):
        c = torch.zeros(3, 3)
        c[1, 0], c[2, 1] = 0.1, 0.2
        # eigenvalues / their mean over modes >= 1: (0, 2/3, 4/3)
        value = prior(smoothness=1.0)(Scene(ict, state_with(c)))
        assert float(value[0]) == pytest.approx(2 / 3 * 0.01 + 4 / 3 * 0.04, rel=1e-5)

    def test_symmetry_counts_only_antisymmetric_modes(self, ict):
        c = torch.zeros(3, 3)
        c[0] = 0.5
        c[2, 1] = 0.3  # symmetric mode: free
        assert float(prior(symmetry=1.0)(Scene(ict, state_with(c)))[0]) == pytest.approx(0.0, abs=1e-9)
        c[1, 0] = 0.1  # antisymmetric: left - right = +-0.2 at every vertex
        value = prior(symmetry=1.0)(Scene(ict, state_with(c)))
        assert float(value[0]) == pytest.approx(0.2**2 / SCALE**2, rel=1e-5)

    def test_mean_colour(self, ict):
        c = torch.zeros(3, 3)
        c[0] = torch.tensor([0.6, 0.36, 0.2])
        value = prior(mean_colour=(0.5, 0.36, 0.3))(Scene(ict, state_with(c)))
        assert float(value[0]) == pytest.approx(2 * (0.1 / MEAN_SIGMA) ** 2, rel=1e-5)

    def test_uniform_skin_tone_is_free_on_ict(self, ict):
        basis = albedo_basis(ict, 20)
        colour = (0.5, 0.36, 0.3)
        term = AlbedoPrior(basis, 1.0, 1.0, colour, MEAN_SIGMA, SCALE)
        value = term(Scene(ict, state_with(basis.constant(torch.tensor(colour)))))
        assert float(value[0]) == pytest.approx(0.0, abs=1e-6)


class TestAlbedoPriorGradient:
    """The analytic gradient matches finite differences with every part switched on."""

    def test_gradcheck(self, ict):
        term = prior(smoothness=1.0, symmetry=0.5, mean_colour=(0.5, 0.36, 0.3))

        def energy(albedo):
            return term(Scene(ict, state_with(albedo)))

        c = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(energy, (c,))


class TestAlbedoPriorFrames:
    """The albedo is shared by the subject: the prior is spread evenly over its frames."""

    def test_spread_over_frames(self, ict):
        c = torch.randn(3, 3)
        assert_spread_evenly(prior(1.0, 1.0, (0.5, 0.36, 0.3)), ict, state_with(c))
