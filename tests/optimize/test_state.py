"""FitState (fitter.state): shapes of a new subject, freeing tensors for a stage, detached copies, and cameras
per frame through frame_view."""
from __future__ import annotations

import math

import pytest
import torch

from fitter.camera import MODEL_TO_OPENCV
from fitter.state import PARAMETER_NAMES, FitState


def two_view_state() -> FitState:
    """Three frames seen by two cameras (focal 800 and 1000 px, different principal points and sizes)."""
    state = FitState.single(4, 3, (480, 640), 800.0, frames=3)
    state.log_focal = torch.log(torch.tensor([800.0, 1000.0]))
    state.principal = torch.tensor([[320.0, 240.0], [500.0, 400.0]])
    state.image_size = torch.tensor([[480, 640], [800, 1000]])
    state.frame_view = torch.tensor([1, 0, 1])
    return state


class TestSingle:
    """FitState.single: one identity, per-frame expression and pose, one camera centred on the image."""

    @pytest.mark.parametrize("frames", [1, 3])
    def test_shapes(self, frames):
        s = FitState.single(4, 3, (480, 640), 800.0, frames=frames)
        assert s.identity.shape == (4,) and s.expression.shape == (frames, 3)
        assert s.rotation.shape == (frames, 3) and s.translation.shape == (frames, 3)
        assert s.num_frames == frames and s.frame_view.tolist() == [0] * frames
        assert s.frame_view.dtype == torch.int64 and s.image_size.dtype == torch.int64
        assert s.log_focal.tolist() == pytest.approx([math.log(800.0)])
        assert s.principal.tolist() == [[320.0, 240.0]] and s.image_size.tolist() == [[480, 640]]
        assert bool((s.translation[:, 2] > 0).all())  # in front of the camera
        assert s.sh is None and s.albedo is None and s.displacement is None
        assert s.frame_image_size(frames - 1) == (480, 640)


class TestFree:
    """free(names) makes exactly the named tensors leaves that require grad, keeps their values, never frees the
    camera's fixed tensors, and rejects unknown names."""

    def test_exactly_the_named(self):
        s = FitState.single(4, 3, (64, 64), 500.0)
        s.sh = torch.ones(1, 9, 3)
        before = {k: v.clone() for k, v in s.tensors().items()}
        freed = s.free(["identity", "sh"])
        assert [t.shape for t in freed] == [(4,), (1, 9, 3)]
        assert freed[0] is s.identity and freed[1] is s.sh
        assert {k for k, v in s.tensors().items() if v.requires_grad} == {"identity", "sh"}
        assert all(t.is_leaf for t in freed)
        for k, v in s.tensors().items():
            assert torch.equal(v, before[k])
        s.free([])
        assert not any(v.requires_grad for v in s.tensors().values())

    def test_every_parameter_can_be_freed(self):
        s = FitState.single(4, 3, (64, 64), 500.0)
        s.sh, s.albedo, s.displacement = torch.ones(1, 9, 3), torch.ones(5, 3), torch.zeros(1, 1, 8, 8)
        s.view_rotation, s.view_translation, s.rig_log_scale = torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(())
        s.frame_instant, s.view_fixed = torch.zeros(1, dtype=torch.int64), torch.zeros(1, dtype=torch.bool)
        assert len(s.free(list(PARAMETER_NAMES))) == len(PARAMETER_NAMES)
        assert not any(getattr(s, n).requires_grad for n in ("principal", "image_size", "frame_view",
                                                             "frame_instant", "view_fixed"))

    def test_unknown_names(self):
        s = FitState.single(4, 3, (64, 64), 500.0)
        with pytest.raises(ValueError, match=r"unknown parameters \['principal', 'wings'\]"):
            s.free(["wings", "principal"])


class TestDetached:
    """detached() copies every tensor (no shared storage, no graph) and the extras dict."""

    def test_copy(self):
        s = FitState.single(4, 3, (64, 64), 500.0)
        s.extras["note"] = 1
        s.free(["translation"])
        copy = s.detached()
        assert not copy.translation.requires_grad
        copy.translation.add_(1.0)
        copy.identity[0] = 5.0
        copy.extras["note"] = 2
        assert float(s.translation.detach()[0, 2]) == 60.0 and float(s.identity[0]) == 0.0 and s.extras["note"] == 1


class TestCameras:
    """focal() and K() give each frame its view's camera (frame_view picks the view)."""

    def test_per_frame(self):
        s = two_view_state()
        assert s.focal().tolist() == pytest.approx([1000.0, 800.0, 1000.0])
        K = s.K()
        assert K.shape == (3, 3, 3)
        torch.testing.assert_close(K[0], torch.tensor([[1000.0, 0, 500.0], [0, 1000.0, 400.0], [0, 0, 1.0]]))
        torch.testing.assert_close(K[1], torch.tensor([[800.0, 0, 320.0], [0, 800.0, 240.0], [0, 0, 1.0]]))
        assert s.frame_image_size(0) == (800, 1000) and s.frame_image_size(1) == (480, 640)

    def test_pose(self):
        s = FitState.single(4, 3, (64, 64), 500.0, frames=2)
        s.translation = torch.tensor([[1.0, 2.0, 50.0], [0.0, 0.0, 70.0]])
        torch.testing.assert_close(s.rotation_matrix(), MODEL_TO_OPENCV.expand(2, 3, 3))
        # zero rotation: the model's +y (up) is the camera's -y, its +z (towards the viewer) the camera's -z
        cam = s.to_camera(torch.tensor([[[0.0, 1.0, 1.0]], [[0.0, 1.0, 1.0]]]))
        torch.testing.assert_close(cam[:, 0], torch.tensor([[1.0, 1.0, 49.0], [0.0, -1.0, 69.0]]))
