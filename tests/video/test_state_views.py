"""FitState with time instants and rig views (fitter.state): each image's model -> camera transform is its
view's extrinsics composed with its instant's head pose; a photo or a single-camera clip is unchanged."""
from __future__ import annotations

import torch
from scipy.spatial.transform import Rotation

from fitter.camera import MODEL_TO_OPENCV, axis_angle_to_matrix, model_to_camera
from fitter.scene import Scene
from fitter.state import FitState
from frames import posed_frames


def rig_state(model) -> FitState:
    """Two instants seen by two views: images (instant, view) = (0, 0), (0, 1), (1, 0), (1, 1)."""
    state = posed_frames(model, 2)
    state.frame_view = torch.tensor([0, 1, 0, 1])
    state.frame_instant = torch.tensor([0, 0, 1, 1])
    state.log_focal = torch.log(torch.tensor([1100.0, 900.0]))
    state.principal = torch.tensor([[256.0, 256.0], [250.0, 260.0]])
    state.image_size = torch.tensor([[512, 512], [512, 512]])
    state.view_rotation = torch.tensor([[0.0, 0.0, 0.0], [0.05, -0.6, 0.1]])
    state.view_translation = torch.tensor([[0.0, 0.0, 0.0], [30.0, 1.0, 20.0]])
    state.view_fixed = torch.tensor([True, False])
    return state


def test_single_camera_path_is_the_photo_one(ict):
    """Without instants or views, to_camera is exactly model_to_camera with the per-frame pose."""
    state = posed_frames(ict, 3)
    points = torch.randn(3, 5, 3)
    assert not state.multiview and state.num_frames == state.num_instants == 3
    torch.testing.assert_close(state.to_camera(points), model_to_camera(points, state.rotation, state.translation),
                               rtol=0, atol=0)


def test_images_compose_view_and_instant(ict):
    state = rig_state(ict)
    assert state.num_frames == 4 and state.num_instants == 2 and state.multiview
    R, t = state.image_pose()
    head = axis_angle_to_matrix(state.rotation) @ MODEL_TO_OPENCV
    rv = axis_angle_to_matrix(state.view_rotation)
    for k, (i, v) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        torch.testing.assert_close(R[k], rv[v] @ head[i])
        torch.testing.assert_close(t[k], rv[v] @ state.translation[i] + state.view_translation[v])
    points = torch.randn(4, 6, 3)
    torch.testing.assert_close(state.to_camera(points), points @ R.transpose(-1, -2) + t[:, None])
    torch.testing.assert_close(state.rotation_matrix(), R)
    # every image shows its instant's expression
    scene = Scene(ict, state)
    v = scene.vertices()
    assert v.shape[0] == 4
    torch.testing.assert_close(v[1], v[0]) and torch.testing.assert_close(v[3], v[2])
    assert not torch.allclose(v[0], v[2])
    index = torch.tensor([3, 500])
    torch.testing.assert_close(Scene(ict, state).vertices_at(index), v[:, index])


def test_rig_scale_multiplies_view_translations(ict):
    state = rig_state(ict)
    _, t1 = state.image_pose()
    state.rig_log_scale = torch.log(torch.tensor(2.0))
    _, t2 = state.image_pose()
    torch.testing.assert_close(t2[1] - t1[1], state.view_translation[1])  # view 1's translation doubled
    torch.testing.assert_close(t2[0], t1[0])  # view 0 sits at the world origin


def test_spread_instants_sums_per_instant(ict):
    state = rig_state(ict)
    spread = state.spread_instants(torch.tensor([2.0, 6.0]))
    torch.testing.assert_close(spread, torch.tensor([1.0, 1.0, 3.0, 3.0]))
    single = posed_frames(ict, 2)
    values = torch.tensor([2.0, 6.0])
    assert single.spread_instants(values) is values


def test_fixed_views_do_not_move(ict):
    """Freed extrinsics get no gradient on views marked fixed (calibrated, or the world view)."""
    state = rig_state(ict)
    rot, trans = state.free(["view_rotation", "view_translation"])
    cam = state.to_camera(torch.randn(4, 5, 3))
    cam.pow(2).sum().backward()
    assert rot.grad[0].abs().max() == 0 and trans.grad[0].abs().max() == 0
    assert rot.grad[1].abs().max() > 0 and trans.grad[1].abs().max() > 0


def test_select_and_assign(ict):
    state = rig_state(ict)
    sub = state.select([1], [2, 3])
    assert sub.num_instants == 1 and sub.frame_instant.tolist() == [0, 0] and sub.frame_view.tolist() == [0, 1]
    torch.testing.assert_close(sub.image_pose()[0], state.image_pose()[0][2:])
    sub.rotation = sub.rotation + 0.1
    sub.identity = sub.identity + 1.0
    before = state.rotation.clone()
    state.assign(sub, [1], ("rotation", "identity"))
    torch.testing.assert_close(state.rotation[1], before[1] + 0.1)
    torch.testing.assert_close(state.rotation[0], before[0])
    torch.testing.assert_close(state.identity, sub.identity)
    R = Rotation.from_rotvec(state.view_rotation[1].numpy()).as_matrix()
    torch.testing.assert_close(state.view_extrinsics()[0][1], torch.as_tensor(R, dtype=torch.float32))
