"""PRDL's distance statistics: the nearest, farthest and mean distance from each grid anchor to a point set,
with their gradients.

On the CPU the statistics and the mean's gradient come from compiled kernels that visit each anchor-point pair
once, in loops that vectorise, and keep no (anchors x points) matrix: torch's route (``cdist``, then ``min``,
``max`` and ``mean``, and a backward through the reciprocal distances) passes over that matrix about eight
times, which made these statistics ~15 % of a default photo fit. One statistic of 1,024 anchors, forward and
backward, 2 threads: 0.66 / 0.85 / 1.80 ms -> 0.40 / 0.44 / 0.66 ms for 50 / 100 / 400 points. float32 is
computed in float32 (as torch's route), anything else in float64. On CUDA, and when the backward is itself
differentiated (a Hessian), torch's route is taken. ``part_distance_stats`` does a frame's parts in one autograd
node (the same kernels per part, so the same values and gradients to the bit).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..common.compiled import njit_cached


def distance_stats(anchors: torch.Tensor, points: torch.Tensor, soft: float = 0.0, chunk: int = 4096) -> torch.Tensor:
    """(A, 3) nearest, farthest and mean distance from each anchor (A, 2) to ``points`` (N, 2), N > 0, in their
    promoted dtype (float32 anchors, as ``anchor_grid`` makes them, serve float64 points too)."""
    dtype = torch.promote_types(anchors.dtype, points.dtype)
    anchors, points = anchors.to(dtype), points.to(dtype)
    out = []
    for a in anchors.split(chunk):
        if soft > 0:
            d = exact_cdist(a, points)
            near = -soft * torch.logsumexp(-d / soft, dim=1) + soft * np.log(d.shape[1])
            far = soft * torch.logsumexp(d / soft, dim=1) - soft * np.log(d.shape[1])
            out.append(torch.stack([near, far, d.mean(1)], -1))
        else:
            out.append(_HardDistanceStats.apply(a, points))
    return torch.cat(out)


def part_distance_stats(anchors: torch.Tensor, points: torch.Tensor, segments: list[tuple[int, int]],
                        soft: float = 0.0) -> torch.Tensor:
    """(P, A, 3): ``distance_stats`` of each part's ``points[start:end]`` for ``segments`` [(start, end), ...],
    zeros for a part without points.

    On the CPU all parts are one autograd node whose kernels run part by part exactly as ``distance_stats``'s do (the
    same values and gradients to the bit): a frame's 8 parts, and a clip's 16 keyframes x 8, paid the Python and
    autograd overhead of a call each, as much as the kernels' own time on small parts."""
    dtype = torch.promote_types(anchors.dtype, points.dtype)
    anchors, points = anchors.to(dtype), points.to(dtype)
    segments = tuple((int(a), int(b)) for a, b in segments)
    if soft > 0 or anchors.requires_grad or not compiled_route(anchors, points):
        zeros = anchors.new_zeros(len(anchors), 3)
        return torch.stack([distance_stats(anchors, points[a:b], soft) if b > a else zeros for a, b in segments])
    return _PartStats.apply(anchors, points, segments)


def exact_cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(A, N) Euclidean distances, exact: the matrix-product form rounds distances under ~0.1 px to 0 and its
    gradient there is NaN."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def compiled_route(anchors: torch.Tensor, points: torch.Tensor) -> bool:
    """Whether the compiled kernels compute these statistics: on the CPU."""
    return anchors.device.type == "cpu" and points.device.type == "cpu"


class _HardDistanceStats(torch.autograd.Function):
    """Nearest, farthest and mean distance with a backward pass that never differentiates cdist.

    Why: autograd's own backward through ``cdist``, ``min``, ``max`` and ``mean`` writes two zero-filled (A, N)
    scatter buffers and an (A, N) distance gradient per call, which made PRDL as costly per iteration as the
    photometric term at 64 px. The nearest and farthest distances depend on one point each (their unit vectors
    times the incoming gradient, added at that point); the mean's gradient at point n,
    ``sum_a g_a (p_n - a) / (N d_an)``, is one pass over the pairs (compiled on the CPU; elsewhere one (3, A) x
    (A, N) product with the inverse distances). A zero distance contributes no gradient, as in ``cdist``'s
    backward. When the backward is itself differentiated (a Hessian: ``torch.is_grad_enabled()`` inside it) it
    is made of differentiable operations on the inputs, so the Hessian is exact (autograd's ``cdist`` has no
    second derivative).
    """

    @staticmethod
    def forward(ctx, anchors: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        ctx.compiled = compiled_route(anchors, points)
        if ctx.compiled:
            stats, i_near, i_far = _compiled_stats(anchors, points)
            ctx.save_for_backward(anchors, points, stats, i_near, i_far)
            return stats
        d = exact_cdist(anchors, points)
        near, i_near = d.min(1)
        far, i_far = d.max(1)
        ctx.save_for_backward(anchors, points, d, i_near, i_far)
        return torch.stack([near, far, d.mean(1)], -1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        anchors, points, saved, i_near, i_far = ctx.saved_tensors
        compiled = ctx.compiled
        if torch.is_grad_enabled():  # this backward is itself differentiated (a Hessian): distances on the graph,
            d = ((anchors[:, None] - points[None]) ** 2).sum(-1).sqrt()  # by a formula autograd differentiates twice
            compiled = False
        elif compiled:
            d = None
        else:
            d = saved
        return _gradients(anchors, points, grad, saved, d, i_near, i_far, ctx.needs_input_grad[0],
                          ctx.needs_input_grad[1])


def _gradients(anchors: torch.Tensor, points: torch.Tensor, grad: torch.Tensor, stats: torch.Tensor,
               d: torch.Tensor | None, i_near: torch.Tensor, i_far: torch.Tensor, need_anchors: bool,
               need_points: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The statistics' gradients for anchors and points: from the distances ``d`` (A, N) when given (torch's
    route), else from the saved ``stats`` (A, 3) and the compiled mean pull."""
    g_mean = grad[:, 2:3] / points.shape[0]  # (A, 1)
    # unit vectors anchor -> chosen point, scaled by the incoming gradient of that statistic
    pulls = []
    for index, column in ((i_near, 0), (i_far, 1)):
        chosen = stats[:, column:column + 1] if d is None else d.gather(1, index[:, None])  # (A, 1)
        pulls.append((index, _pull(points, anchors, index, chosen, grad[:, column:column + 1])))
    inv = None if d is None else d.reciprocal().nan_to_num(posinf=0.0)  # (A, N); 1 / 0 -> 0
    grad_anchors = grad_points = None
    if need_points:
        if d is None:
            grad_points = _compiled_mean_pull(points, anchors, g_mean[:, 0])
        else:
            sums = torch.cat([g_mean * anchors, g_mean], 1).T @ inv  # (3, N): sum_a g_a a / d_an, sum_a g_a / d_an
            grad_points = points * sums[2:].T - sums[:2].T
        for index, pull in pulls:
            grad_points = grad_points.index_add(0, index, pull)
    if need_anchors:
        if d is None:
            grad_anchors = g_mean * _compiled_mean_pull(anchors, points, torch.ones_like(points[:, 0]))
        else:
            weighted = inv * g_mean
            grad_anchors = anchors * weighted.sum(1, keepdim=True) - weighted @ points
        for _, pull in pulls:
            grad_anchors = grad_anchors - pull
    return grad_anchors, grad_points


def _pull(points: torch.Tensor, anchors: torch.Tensor, index: torch.Tensor, chosen: torch.Tensor,
          grad: torch.Tensor) -> torch.Tensor:
    """The nearest (or farthest) statistic's pull on its chosen points: the unit vector anchor -> ``points[index]``
    (``chosen``: that distance, 1 / 0 read as 0) times the statistic's incoming gradient; (..., A, 2) for indices
    (..., A), one part (A,) or several parts at once (P, A)."""
    return (points[index] - anchors) * chosen.reciprocal().nan_to_num(posinf=0.0) * grad


class _PartStats(torch.autograd.Function):
    """``_HardDistanceStats`` for several parts of one point set at once (anchors constant): the same kernels on
    each part's contiguous slice, the nearest and farthest pulls of all parts added in one go (each point gets
    only its own part's, in the same order)."""

    @staticmethod
    def forward(ctx, anchors: torch.Tensor, points: torch.Tensor, segments: tuple) -> torch.Tensor:
        stats, i_near, i_far = _compiled_part_stats(anchors, points, segments)
        ctx.segments = segments
        ctx.save_for_backward(anchors, points, stats, i_near, i_far)
        return stats

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        anchors, points, stats, i_near, i_far = ctx.saved_tensors
        parts = [(k, a, b) for k, (a, b) in enumerate(ctx.segments) if b > a]
        if not ctx.needs_input_grad[1] or not parts:
            return None, None, None
        if torch.is_grad_enabled():  # a Hessian: each part by torch's differentiable formula
            grad_points = torch.zeros_like(points)
            for k, a, b in parts:
                part = points[a:b]
                d = ((anchors[:, None] - part[None]) ** 2).sum(-1).sqrt()
                _, g = _gradients(anchors, part, grad[k], stats[k], d, i_near[k] - a, i_far[k] - a, False, True)
                grad_points = grad_points.index_add(0, torch.arange(a, b, device=points.device), g)
            return None, grad_points, None
        grad_points = _compiled_part_mean_pull(points, anchors, grad, parts)
        chosen_parts = torch.tensor([k for k, _, _ in parts])
        g = grad[chosen_parts]  # (P', A, 3)
        for index, column in ((i_near[chosen_parts], 0), (i_far[chosen_parts], 1)):
            pull = _pull(points, anchors, index, stats[chosen_parts, :, column:column + 1], g[..., column:column + 1])
            grad_points = grad_points.index_add(0, index.reshape(-1), pull.reshape(-1, 2))
        return None, grad_points, None


# -- compiled kernels (CPU) ------------------------------------------------------------------------------
def _columns(t: torch.Tensor, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """x and y of (n, 2) points as two contiguous arrays (so the kernels' inner loops vectorise)."""
    t = t.detach().to(dtype)
    return np.ascontiguousarray(t[:, 0].numpy()), np.ascontiguousarray(t[:, 1].numpy())


def _compiled_stats(anchors: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A, 3) statistics in the anchors' dtype (``distance_stats`` gives both sets one), and the (A,) indices of
    each anchor's nearest and farthest point: the points as one part."""
    stats, i_near, i_far = _compiled_part_stats(anchors, points, ((0, len(points)),))
    return stats[0], i_near[0], i_far[0]


def _compiled_mean_pull(rows_of: torch.Tensor, others: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(R, 2): ``sum_o g_o (r - o) / |r - o|`` at each row ``r`` of ``rows_of``, over the rows ``o`` of
    ``others`` (a zero distance adds nothing); in float32 when everything is float32, else float64."""
    same = rows_of.dtype == others.dtype == g.dtype == torch.float32
    dtype = torch.float32 if same else torch.float64
    (rx, ry), (ox, oy) = _columns(rows_of, dtype), _columns(others, dtype)
    out = np.empty((len(rx), 2), rx.dtype)
    _mean_pull(rx, ry, ox, oy, np.ascontiguousarray(g.detach().to(dtype).numpy()), out)
    return torch.from_numpy(out).to(rows_of.dtype)


def _compiled_part_stats(anchors: torch.Tensor, points: torch.Tensor, segments: tuple
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(P, A, 3) statistics of each part (zeros for an empty one) and (P, A) indices into ``points`` of each
    anchor's nearest and farthest point of the part; the kernels run on each part as ``_compiled_stats`` runs them."""
    dtype = torch.float32 if anchors.dtype == torch.float32 and points.dtype == torch.float32 else torch.float64
    (ax, ay), (px, py) = _columns(anchors, dtype), _columns(points, dtype)
    stats = np.zeros((len(segments), len(ax), 3), ax.dtype)
    i_near = np.zeros((len(segments), len(ax)), np.int64)
    i_far = np.zeros((len(segments), len(ax)), np.int64)
    for k, (a, b) in enumerate(segments):
        if b <= a:
            continue
        if dtype == torch.float32:
            distances = np.empty(b - a, ax.dtype)
            _stats_float32(ax, ay, px[a:b], py[a:b], distances, distances.view(np.int32), stats[k], i_near[k], i_far[k])
        else:
            _stats_exact(ax, ay, px[a:b], py[a:b], stats[k], i_near[k], i_far[k])
        i_near[k] += a
        i_far[k] += a
    return torch.from_numpy(stats).to(anchors.dtype), torch.from_numpy(i_near), torch.from_numpy(i_far)


def _compiled_part_mean_pull(points: torch.Tensor, anchors: torch.Tensor, grad: torch.Tensor,
                             parts: list[tuple[int, int, int]]) -> torch.Tensor:
    """(N, 2): each part's mean-distance gradient at its points (zero at points of no part), part by part as
    ``_compiled_mean_pull`` computes it."""
    g_mean = grad[:, :, 2]
    same = points.dtype == anchors.dtype == grad.dtype == torch.float32
    dtype = torch.float32 if same else torch.float64
    (rx, ry), (ox, oy) = _columns(points, dtype), _columns(anchors, dtype)
    out = np.zeros((len(rx), 2), rx.dtype)
    for k, a, b in parts:
        g = np.ascontiguousarray((g_mean[k] / (b - a)).detach().to(dtype).numpy())
        _mean_pull(rx[a:b], ry[a:b], ox, oy, g, out[a:b])
    return torch.from_numpy(out).to(points.dtype)


_FAST = {"reassoc", "nsz", "arcp", "contract"}  # lets LLVM vectorise sums; NaN and inf keep their meaning


@njit_cached(nogil=True, fastmath=_FAST)
def _stats_float32(ax, ay, px, py, distances, bits, stats, i_near, i_far):  # pragma: no cover - compiled
    """Every anchor's nearest, farthest and mean distance to the points, and the indices of the first two
    (the first such point on ties, as torch's min and max on the CPU); ``bits`` is ``distances`` seen as int32.

    A distance is never negative, and non-negative floats order as their bit patterns do: so the nearest point
    is the least of ``bits << 32 | j`` and the farthest the greatest of ``bits << 32 | (n - 1 - j)``, integer
    reductions that vectorise and carry the first index along. A NaN makes every statistic NaN; an infinite
    distance is the farthest and makes the mean infinite (torch's route gives the same)."""
    n = px.shape[0]
    for a in range(ax.shape[0]):
        x = ax[a]
        y = ay[a]
        total = np.float32(0.0)  # float32 sums, as torch's mean
        for j in range(n):
            dx = px[j] - x
            dy = py[j] - y
            d = math.sqrt(dx * dx + dy * dy)
            distances[j] = d
            total += d
        lo = np.int64(0x7FFFFFFFFFFFFFFF)
        hi = np.int64(-1)
        for j in range(n):
            key = np.int64(bits[j] & 0x7FFFFFFF) << 32  # the sign bit dropped: -0 is 0, a negative NaN a NaN
            lo = min(lo, key | j)
            hi = max(hi, key | (n - 1 - j))
        j_near = lo & 0xFFFFFFFF
        j_far = n - 1 - (hi & 0xFFFFFFFF)
        # a NaN has the greatest pattern of all, above inf: then every statistic is NaN, as torch's min and max
        # say (tested on the bits: under these fastmath flags LLVM may fold math.isnan)
        nan = (bits[j_far] & 0x7FFFFFFF) > 0x7F800000
        stats[a, 0] = distances[j_far] if nan else distances[j_near]
        stats[a, 1] = distances[j_far]
        stats[a, 2] = total / n
        i_near[a] = j_near
        i_far[a] = j_far


@njit_cached(nogil=True)
def _stats_exact(ax, ay, px, py, stats, i_near, i_far):  # pragma: no cover - compiled
    """``_stats_float32`` for any float type, by plain comparisons (float64: tests and float64 models)."""
    n = px.shape[0]
    for a in range(ax.shape[0]):
        near = math.inf
        far = -1.0
        total = 0.0
        j_near = 0
        j_far = 0
        for j in range(n):
            dx = px[j] - ax[a]
            dy = py[j] - ay[a]
            d = math.sqrt(dx * dx + dy * dy)
            total += d
            if d < near:
                near = d
                j_near = j
            if d > far:
                far = d
                j_far = j
        nan = math.isnan(total)  # a NaN makes every statistic NaN, as in torch's min and max
        stats[a, 0] = total if nan else near
        stats[a, 1] = total if nan else far
        stats[a, 2] = total / n
        i_near[a] = j_near
        i_far[a] = j_far


@njit_cached(nogil=True, fastmath=_FAST)
def _mean_pull(rx, ry, ox, oy, g, out):  # pragma: no cover - compiled
    """``out[i] = sum_j g_j (r_i - o_j) / |r_i - o_j|``, a zero distance adding nothing."""
    zero = np.zeros(1, rx.dtype)[0]
    for i in range(rx.shape[0]):
        x = rx[i]
        y = ry[i]
        sx = zero
        sy = zero
        for j in range(ox.shape[0]):
            dx = x - ox[j]
            dy = y - oy[j]
            d2 = dx * dx + dy * dy
            w = g[j] / math.sqrt(d2) if d2 > 0 else zero
            sx += w * dx
            sy += w * dy
        out[i, 0] = sx
        out[i, 1] = sy
