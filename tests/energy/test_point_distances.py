"""PRDL's distance statistics (fitter.energy.point_distances): both routes (the compiled kernels taken on the
CPU, and torch's route taken on CUDA and for Hessians) give autograd's own values and gradients."""
from __future__ import annotations

import pytest
import torch

from fitter.energy import point_distances
from fitter.energy.point_distances import distance_stats, part_distance_stats

ROUTES = ("compiled", "torch")


@pytest.fixture(params=ROUTES)
def route(request, monkeypatch):
    """Which route computes the statistics: the torch route is forced by saying the inputs are not on the CPU."""
    if request.param == "torch":
        monkeypatch.setattr(point_distances, "compiled_route", lambda anchors, points: False)
    return request.param


def autograd_stats(anchors, points, twice_differentiable=False):
    if twice_differentiable:  # autograd's cdist has no second derivative
        d = ((anchors[:, None] - points[None]) ** 2).sum(-1).sqrt()
    else:
        d = torch.cdist(anchors, points, compute_mode="donot_use_mm_for_euclid_dist")
    return torch.stack([d.min(1).values, d.max(1).values, d.mean(1)], -1)


class TestDistanceStatsGradient:
    """The statistics' hand-written backward (nearest and farthest point, mean) gives autograd's own gradient
    through cdist, min, max and mean, for points and anchors, and none along a zero distance (as cdist)."""

    @pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
    def test_equals_autograd(self, route, dtype, tol):
        rng = torch.Generator().manual_seed(3)
        anchors = (torch.rand(40, 2, generator=rng, dtype=dtype) * 50).requires_grad_(True)
        points = (torch.rand(23, 2, generator=rng, dtype=dtype) * 50).requires_grad_(True)
        weights = torch.randn(40, 3, generator=rng, dtype=dtype)
        values = distance_stats(anchors, points, chunk=16)
        assert values.dtype == dtype
        torch.testing.assert_close(values, autograd_stats(anchors, points), rtol=tol, atol=tol)
        ours = torch.autograd.grad((values * weights).sum(), (anchors, points))
        theirs = torch.autograd.grad((autograd_stats(anchors, points) * weights).sum(), (anchors, points))
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol)

    def test_gradcheck(self, route):
        rng = torch.Generator().manual_seed(4)
        anchors = torch.rand(12, 2, generator=rng, dtype=torch.float64).requires_grad_(True)
        points = torch.rand(7, 2, generator=rng, dtype=torch.float64).requires_grad_(True)
        assert torch.autograd.gradcheck(distance_stats, (anchors, points))

    def test_hessian_equals_autograd(self, route):
        rng = torch.Generator().manual_seed(5)
        anchors = torch.rand(15, 2, generator=rng, dtype=torch.float64)
        points = torch.rand(6, 2, generator=rng, dtype=torch.float64)
        weights = torch.randn(15, 3, generator=rng, dtype=torch.float64)
        ours = torch.autograd.functional.hessian(lambda p: (distance_stats(anchors, p) * weights).sum(), points)
        theirs = torch.autograd.functional.hessian(
            lambda p: (autograd_stats(anchors, p, twice_differentiable=True) * weights).sum(), points)
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)

    def test_zero_distance_pulls_nothing(self, route):
        anchors = torch.tensor([[1.0, 1.0], [4.0, 5.0]])
        points = torch.tensor([[1.0, 1.0], [2.0, 2.0]], requires_grad=True)
        grad = torch.autograd.grad(distance_stats(anchors, points)[0].sum(), points)[0]
        # anchor 0 sits on point 0: its nearest distance (0) has no direction; the farthest and mean pull
        far = torch.tensor([1.0, 1.0]) / 2**0.5
        torch.testing.assert_close(grad, torch.stack([torch.zeros(2), far + far / 2]))
        assert torch.isfinite(grad).all()

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_ties_pull_the_first_point(self, route, dtype):
        anchors = torch.tensor([[0.0, 0.0]], dtype=dtype)
        points = torch.tensor([[3.0, 3.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-3.0, 3.0]], dtype=dtype,
                              requires_grad=True)
        for column, first in ((0, 1), (1, 0)):  # nearest: 1, 2, 3 tie; farthest: 0 and 4 tie
            grad = torch.autograd.grad(distance_stats(anchors, points)[0, column], points)[0]
            expected = torch.zeros(5, 2, dtype=dtype)
            expected[first] = points[first].detach() / points[first].detach().norm()
            torch.testing.assert_close(grad, expected)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_non_finite_points_as_torch_says(self, route, dtype):
        anchors = torch.tensor([[1.0, 1.0], [4.0, 5.0]], dtype=dtype)
        zero = torch.zeros((), dtype=dtype)
        for bad in (torch.tensor(float("nan"), dtype=dtype), zero / zero, -(zero / zero)):  # x86's 0/0 is -NaN
            for points in (torch.stack([torch.stack([zero + 1, zero + 1]), torch.stack([bad, zero + 2])]),
                           torch.stack([bad, bad])[None].expand(3, 2)):
                assert torch.isnan(distance_stats(anchors, points)).all()
        points = torch.tensor([[1.0, 2.0], [float("inf"), 2.0]], dtype=dtype)  # the farthest, the mean infinite
        torch.testing.assert_close(distance_stats(anchors, points), autograd_stats(anchors, points))

    def test_one_point_mixed_dtypes_and_strides(self, route):
        anchors = torch.rand(9, 2, dtype=torch.float32) * 10  # float32, as anchor_grid makes them
        points = (torch.rand(8, 2, dtype=torch.float64) * 10)[::2].requires_grad_(True)  # (4, 2), strided rows
        for p in (points, points[:1]):
            values = distance_stats(anchors, p)
            expected = autograd_stats(anchors.double(), p)
            assert values.dtype == torch.float64
            torch.testing.assert_close(values, expected, rtol=1e-12, atol=1e-12)
            ours = torch.autograd.grad(values.sum(), p)[0]
            torch.testing.assert_close(ours, torch.autograd.grad(expected.sum(), p)[0], rtol=1e-12, atol=1e-12)


class TestCompiledRoute:
    """The CPU takes the compiled kernels: no (anchors x points) matrix is made."""

    def test_cpu_needs_no_distance_matrix(self, monkeypatch):
        def refuse(*args, **kwargs):
            raise AssertionError("the (anchors x points) matrix was computed")

        monkeypatch.setattr(point_distances, "exact_cdist", refuse)
        monkeypatch.setattr(torch, "cdist", refuse)
        anchors = torch.rand(30, 2) * 10
        points = (torch.rand(9, 2) * 10).requires_grad_(True)
        distance_stats(anchors, points).sum().backward()
        assert torch.isfinite(points.grad).all()


class TestPartStats:
    """Several parts of one point set at once give each part's own statistics and gradients, to the bit."""

    SEGMENTS = [(0, 7), (7, 7), (7, 30), (30, 31)]  # an empty part and a one-point part among them

    @staticmethod
    def one_by_one(anchors, points, segments):
        zeros = anchors.new_zeros(len(anchors), 3)
        return torch.stack([distance_stats(anchors, points[a:b]) if b > a else zeros for a, b in segments])

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_equals_each_part_alone(self, route, dtype):
        rng = torch.Generator().manual_seed(7)
        anchors = torch.rand(64, 2, generator=rng, dtype=dtype) * 40
        points = (torch.rand(31, 2, generator=rng, dtype=dtype) * 40).requires_grad_(True)
        weights = torch.randn(4, 64, 3, generator=rng, dtype=dtype)
        together = part_distance_stats(anchors, points, self.SEGMENTS)
        alone = self.one_by_one(anchors, points, self.SEGMENTS)
        assert torch.equal(together, alone)
        ours = torch.autograd.grad((together * weights).sum(), points)[0]
        theirs = torch.autograd.grad((alone * weights).sum(), points)[0]
        assert torch.equal(ours, theirs)

    def test_hessian_equals_each_part_alone(self, route):
        rng = torch.Generator().manual_seed(8)
        anchors = torch.rand(10, 2, generator=rng, dtype=torch.float64)
        points = torch.rand(31, 2, generator=rng, dtype=torch.float64)
        weights = torch.randn(4, 10, 3, generator=rng, dtype=torch.float64)
        ours = torch.autograd.functional.hessian(
            lambda p: (part_distance_stats(anchors, p, self.SEGMENTS) * weights).sum(), points)
        theirs = torch.autograd.functional.hessian(
            lambda p: (self.one_by_one(anchors, p, self.SEGMENTS) * weights).sum(), points)
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)

    def test_one_autograd_node_on_the_cpu(self):
        points = (torch.rand(31, 2) * 10).requires_grad_(True)
        stats = part_distance_stats(torch.rand(16, 2) * 10, points, self.SEGMENTS)
        assert type(stats.grad_fn).__name__ == "_PartStatsBackward"
