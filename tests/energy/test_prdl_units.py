"""Unit checks of the PRDL term (fitter.energy.prdl) that test_prdl.py leaves out: the value on statistics
offset by a known amount, part weights and absent parts, the gradient against finite differences, and
per-frame values."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.crop import FitCrop
from fitter.energy.prdl import PRDLTargets, PRDLTerm, anchor_grid
from fitter.observe.segmentation import PART_NAMES
from fitter.scene import Scene
from frames import one_frame, posed_frames, with_dtype

SIGMA = 0.01
OFFSET = 0.01  # every target statistic differs from the prediction by this (fraction of the crop side)
CROP_SIZE = 96
GRID = 6
ALL_VERTICES = 10**6  # max_points above any part's size: no random subsampling of the visible vertices


def blank_targets(model, state, frame: int, dtype=torch.float32, present=None) -> PRDLTargets:
    """Targets of one frame with zero statistics, over a crop around its projected face."""
    scene = Scene(model, state)
    with torch.no_grad():
        face = torch.as_tensor(model.topology.region("narrow_face")).nonzero()[:, 0]
        pix = scene.project(scene.vertices_at(face))[0][frame].double().numpy()
    crop = FitCrop.around(pix, CROP_SIZE)
    parts = len(PART_NAMES)
    present = torch.ones(parts, dtype=torch.bool) if present is None else present
    return PRDLTargets(crop, anchor_grid(CROP_SIZE, GRID).to(dtype), torch.zeros(parts, GRID * GRID, 3, dtype=dtype),
                       present, [1] * parts)


def offset_term(model, state, part_weights=None, present=None, dtype=torch.float32, points="surface") -> PRDLTerm:
    """A term whose target statistics are its own predictions at ``state`` plus OFFSET."""
    frames = state.num_frames
    term = PRDLTerm(model, [blank_targets(model, state, f, dtype, present) for f in range(frames)], part_weights,
                    sigma=SIGMA, max_points=ALL_VERTICES, points=points)
    scene = Scene(model, state)
    with torch.no_grad():
        for f in range(frames):
            term.targets[f].stats = term.predicted_stats(scene, f)[0] + OFFSET
    return term


class TestPRDLValue:
    """sum_p w_p mean_anchors |stats - target|^2 / sigma^2: each present part costs w_p * 3 (OFFSET / SIGMA)^2."""

    def test_offset_statistics(self, ict):
        state = posed_frames(ict, 1)
        weights = {"nose": 2.0, "skin": 0.5}
        term = offset_term(ict, state, weights)
        _, has = term.predicted_stats(Scene(ict, state))
        expected = sum(3 * (OFFSET / SIGMA) ** 2 * weights.get(p, 1.0) for p, h in zip(PART_NAMES, has) if h)
        value = term(Scene(ict, state))
        assert value.shape == (1,) and int(has.sum()) >= 6
        assert float(value[0]) == pytest.approx(expected, rel=1e-4)

    def test_absent_parts_cost_nothing(self, ict):
        state = posed_frames(ict, 1)
        present = torch.ones(len(PART_NAMES), dtype=torch.bool)
        present[PART_NAMES.index("nose")] = False
        with_nose = float(offset_term(ict, state)(Scene(ict, state))[0])
        without = float(offset_term(ict, state, present=present)(Scene(ict, state))[0])
        assert without == pytest.approx(with_nose - 3 * (OFFSET / SIGMA) ** 2, rel=1e-4)


class TestPRDLGradient:
    """The analytic gradient in pose and shape matches finite differences (float64 ICT, visible sets held,
    as between optimiser rounds)."""

    @pytest.mark.parametrize("points", ["surface", "vertices"])
    def test_gradcheck(self, ict64, points):
        state = with_dtype(posed_frames(ict64, 1), torch.float64)
        term = offset_term(ict64, state, dtype=torch.float64, points=points)
        # Off the raster the point sets were taken from: there, surface points sit on pixel centres placed
        # symmetrically around anchors, and the nearest-point distance has exact ties (no derivative).
        state.translation = state.translation + torch.tensor([0.013, -0.007, 0.02], dtype=torch.float64)

        def energy(rotation, translation, identity):
            s = state.detached()
            s.rotation, s.translation, s.identity = rotation, translation, identity
            return term(Scene(ict64, s))

        inputs = tuple(getattr(state, n).detach().clone().requires_grad_(True)
                       for n in ("rotation", "translation", "identity"))
        assert torch.autograd.gradcheck(energy, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


class TestPRDLFrames:
    """Per-frame values (F,): each frame's value is its own statistics against its own targets."""

    @pytest.mark.parametrize("frames", [1, 3])
    def test_each_frame_alone(self, ict, frames):
        state = posed_frames(ict, frames)
        term = offset_term(ict, state)
        shifted = state.detached()
        shifted.translation = shifted.translation + torch.tensor([0.3, -0.2, 0.0])  # unequal statistics
        values = term(Scene(ict, shifted))
        assert values.shape == (frames,)
        for f in range(frames):
            alone = PRDLTerm(ict, [term.targets[f]], sigma=SIGMA, max_points=ALL_VERTICES)
            alone.update(Scene(ict, one_frame(state, f)))  # the same visible set as the F-frame term's
            torch.testing.assert_close(values[f : f + 1], alone(Scene(ict, one_frame(shifted, f))), rtol=1e-4,
                                       atol=1e-4)

    def test_each_frame_gradient_alone(self, ict64):
        """The F-frame term's gradient in a frame's expression and pose is that frame's own term's."""
        state = with_dtype(posed_frames(ict64, 3), torch.float64)
        term = offset_term(ict64, state, dtype=torch.float64)
        shifted = state.detached()
        shifted.translation = shifted.translation + torch.tensor([0.3, -0.2, 0.0], dtype=torch.float64)
        names = ("expression", "rotation", "translation")
        free = {n: getattr(shifted, n).detach().clone().requires_grad_(True) for n in names}
        for n, v in free.items():
            setattr(shifted, n, v)
        term(Scene(ict64, shifted)).sum().backward()
        for f in range(3):
            alone = PRDLTerm(ict64, [term.targets[f]], sigma=SIGMA, max_points=ALL_VERTICES)
            alone.update(Scene(ict64, one_frame(state, f)))
            one = one_frame(shifted.detached(), f)
            mine = {n: getattr(one, n).detach().clone().requires_grad_(True) for n in names}
            for n, v in mine.items():
                setattr(one, n, v)
            alone(Scene(ict64, one)).sum().backward()
            for n in names:
                torch.testing.assert_close(free[n].grad[f], mine[n].grad[0], rtol=1e-8, atol=1e-10)

    def test_frames_share_one_evaluation(self, ict, monkeypatch):
        """Several frames' point sets are evaluated as one subset per scene, not every frame's at every instant."""
        state = posed_frames(ict, 3)
        term = offset_term(ict, state)
        calls = []
        evaluate = type(ict).vertices_subset
        monkeypatch.setattr(type(ict), "vertices_subset",
                            lambda self, index, *a, **k: calls.append(len(index)) or evaluate(self, index, *a, **k))
        term(Scene(ict, state))
        assert len(calls) == 1 and calls[0] == len(torch.unique(torch.cat(term.index)))


class TestPRDLPointSets:
    """The predicted point sets: surface points are the pixels each rendered part covers (the density of the
    target pixels), and the skin stops at the target's brow line as the target skin does."""

    def test_surface_points_are_the_rendered_part_pixels(self, ict):
        from fitter.render import render_labels

        state = posed_frames(ict, 1)
        term = offset_term(ict, state)
        scene = Scene(ict, state)
        term.update(scene)
        targets = term.targets[0]
        crop_pts = targets.crop.to_crop(scene.project(term.predicted_points(scene))[0][0]) * (term.raster_size / targets.crop.size)
        frags = term.crop_raster(scene)
        labels = render_labels(frags, ict.topology.vertex_labels["parts"], len(PART_NAMES) + 1, soft=False)[0]
        for k, (start, end) in enumerate(term.segments[0]):
            pts = crop_pts[start:end]
            # each point projects onto a pixel centre of the raster, and that pixel shows the part
            torch.testing.assert_close(pts - 0.5, torch.round(pts - 0.5), atol=2e-3, rtol=0)
            cols, rows = (pts[:, 0] - 0.5).round().long(), (pts[:, 1] - 0.5).round().long()
            assert bool((labels[rows, cols] == k + 1).all())
            assert end - start == int((labels == k + 1).sum())  # all of them (max_points above every part)

    @pytest.mark.parametrize("points", ["surface", "vertices"])
    def test_predicted_skin_stops_at_the_brow_line(self, ict, points):
        state = posed_frames(ict, 1)
        term = offset_term(ict, state, points=points)
        scene = Scene(ict, state)
        skin = PART_NAMES.index("skin")

        def skin_points():
            term.update(scene)
            start, end = term.segments[0][skin]
            return term.predicted_stats(scene)[0], start, end

        _, start, end = skin_points()
        whole = end - start
        line_y = float(term.targets[0].crop.size) * 0.4  # a horizontal line across the upper face
        term.targets[0].brow_line = np.array([0.0, line_y, 0.0, 1.0])
        _, start, end = skin_points()
        assert 0 < end - start < 0.9 * whole
        y = term.targets[0].crop.to_crop(scene.project(term.predicted_points(scene))[0][0])[start:end, 1]
        assert float(y.min()) >= line_y - 1e-3
