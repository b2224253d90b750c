"""Scene (fitter.scene): geometry of one FitState evaluated lazily and at most once, shared by the terms."""
from __future__ import annotations

import torch

from fitter.camera import project
from fitter.scene import Scene
from frames import posed_frames


class CountingModel:
    """A real model whose vertex evaluations are counted (the Scene's only calls into the model)."""

    def __init__(self, model) -> None:
        self.model = model
        self.topology = model.topology
        self.full = 0
        self.subsets: list[int] = []

    def vertices(self, *args, **kw):
        self.full += 1
        return self.model.vertices(*args, **kw)

    def vertices_subset(self, index, *args, **kw):
        self.subsets.append(len(index))
        return self.model.vertices_subset(index, *args, **kw)


class TestVertices:
    """vertices() is computed once per scene; vertices_at evaluates only its subset until all are known, and
    then slices them; both agree."""

    def test_computed_once(self, ict):
        model = CountingModel(ict)
        scene = Scene(model, posed_frames(ict, 2))
        first = scene.vertices()
        assert first.shape == (2, ict.num_vertices, 3)
        assert scene.vertices() is first and scene.camera_vertices() is scene.camera_vertices()
        assert model.full == 1

    def test_subset_then_all(self, ict):
        model = CountingModel(ict)
        scene = Scene(model, posed_frames(ict, 2))
        index = torch.tensor([5, 100, 7000])
        subset = scene.vertices_at(index)
        assert model.subsets == [3] and model.full == 0  # only three vertices evaluated
        torch.testing.assert_close(subset, scene.vertices()[:, index])
        scene.vertices_at(index)
        assert model.subsets == [3]  # all vertices known now: sliced, not evaluated again

    def test_frames_share_the_identity(self, ict):
        state = posed_frames(ict, 2)
        state.expression = torch.zeros_like(state.expression)
        v = Scene(ict, state).vertices()
        torch.testing.assert_close(v[0], v[1])  # same identity, no expression: the same shape in every frame


class TestEmbedded:
    """embedded(name): the surface points of a model embedding, memoised per scene."""

    def test_mediapipe_points(self, ict):
        scene = Scene(ict, posed_frames(ict, 2))
        points = scene.embedded("mediapipe478")
        assert points.shape == (2, 478, 3) and scene.embedded("mediapipe478") is points
        expected = ict.embedded_points(scene.vertices(), ict.topology.embeddings["mediapipe478"])
        torch.testing.assert_close(points, expected)


class TestCamera:
    """project() is the camera module's projection of to_camera(points) with the state's per-frame K."""

    def test_project(self, ict):
        state = posed_frames(ict, 3)
        scene = Scene(ict, state)
        points = scene.vertices_at(torch.arange(0, 14000, 1000))
        pix, cam = scene.project(points)
        torch.testing.assert_close(cam, state.to_camera(points))
        torch.testing.assert_close(pix, project(state.to_camera(points), state.K()))
        torch.testing.assert_close(scene.camera_vertices(), state.to_camera(scene.vertices()))
        assert scene.K() is scene.K()

    def test_memo(self, ict):
        scene = Scene(ict, posed_frames(ict, 1))
        calls = []
        for _ in range(3):
            scene.memo("render", lambda: calls.append(1) or len(calls))
        assert calls == [1] and scene.memo("render", lambda: 99) == 1
        assert Scene(ict, scene.state).memo("render", lambda: 99) == 99  # a new scene (new step) recomputes
