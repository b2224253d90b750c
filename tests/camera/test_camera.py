import numpy as np
import torch
from scipy.spatial.transform import Rotation

from fitter.camera import (MODEL_TO_OPENCV, axis_angle_to_matrix, focal_from_exif, focal_from_fov, intrinsics,
                           matrix_to_axis_angle, model_to_camera, project)


def test_rodrigues_matches_scipy_and_is_smooth_at_zero():
    aa = torch.tensor([[0.3, -1.2, 0.7], [1e-6, 0.0, -2e-6], [0.0, 0.0, 0.0]], dtype=torch.float64)
    r = axis_angle_to_matrix(aa).numpy()
    np.testing.assert_allclose(r, Rotation.from_rotvec(aa.numpy()).as_matrix(), atol=1e-10)
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    axis_angle_to_matrix(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    np.testing.assert_allclose(matrix_to_axis_angle(r[0]), aa[0].numpy(), atol=1e-9)


def test_zero_rotation_faces_the_camera_and_y_points_down():
    # model frame: nose at +z, forehead at +y
    pts = torch.tensor([[[0.0, 0.0, 10.0], [0.0, 5.0, 0.0]]])
    cam = model_to_camera(pts, torch.zeros(1, 3), torch.tensor([[0.0, 0.0, 50.0]]))
    assert cam[0, 0, 2] < 50.0  # the nose is nearer the camera than the head centre
    assert cam[0, 1, 1] < 0.0  # up in the model is up in the image (negative y in OpenCV)
    assert torch.equal(MODEL_TO_OPENCV, torch.diag(torch.tensor([1.0, -1.0, -1.0])))


def test_projection_pixel_convention():
    K = intrinsics(torch.tensor([100.0]), torch.tensor([[32.0, 24.0]]))
    # a point on the optical axis lands on the principal point: the corner between the 4 central pixels
    p = project(torch.tensor([[[0.0, 0.0, 5.0], [1.0, -2.0, 10.0]]]), K)
    np.testing.assert_allclose(p[0].numpy(), [[32.0, 24.0], [42.0, 4.0]], atol=1e-5)


def test_focal_helpers():
    assert abs(focal_from_fov(90.0, 200) - 100.0) < 1e-9
    # 36x24 full frame at 50 mm-equivalent: f = 50/36 of the width for a 3:2 image
    assert abs(focal_from_exif(50.0, 3600, 2400) - 5000.0) < 1e-6
    assert focal_from_exif(None, 100, 100) is None
