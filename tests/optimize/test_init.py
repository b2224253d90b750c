import numpy as np

from fitter.camera import MODEL_TO_OPENCV
from fitter.energy.landmarks import landmark_embedding
from fitter.optimize.init import (blendshape_name_map, expression_from_blendshapes, initialise, rotation_from_mediapipe,
                         solve_pose)
from fitter.scene import Scene
from synthetic_faces import ground_truth, observe


def test_blendshape_names_map_to_ict_sides(ict):
    names = ict.expression_names
    m = blendshape_name_map(names)
    assert [names[i] for i in m["browDownLeft"]] == ["browDown_L"]
    assert [names[i] for i in m["browInnerUp"]] == ["browInnerUp_L", "browInnerUp_R"]
    assert [names[i] for i in m["jawOpen"]] == ["jawOpen"]
    e = expression_from_blendshapes({"_neutral": 0.9, "jawOpen": 0.7, "cheekPuff": 0.2, "eyeBlinkRight": 1.2}, names)
    assert e[names.index("jawOpen")] == np.float32(0.7)
    assert e[names.index("cheekPuff_L")] == e[names.index("cheekPuff_R")] == np.float32(0.2)
    assert e[names.index("eyeBlink_R")] == 1.0 and abs(float(e.sum()) - 2.1) < 1e-6


def test_rotation_from_mediapipe_transform_convention():
    # MediaPipe's transform of a face turned by +20 deg about the (OpenGL) y axis
    from scipy.spatial.transform import Rotation

    r_gl = Rotation.from_euler("y", 20, degrees=True).as_matrix()
    transform = np.eye(4)
    transform[:3, :3] = r_gl * 1.3  # with a uniform scale, which must be ignored
    aa = rotation_from_mediapipe(transform)
    flip = MODEL_TO_OPENCV.numpy()
    np.testing.assert_allclose(Rotation.from_rotvec(aa).as_matrix() @ flip, flip @ r_gl, atol=1e-6)


def test_pnp_recovers_pose_of_a_rigid_face(ict_random_embedding):
    model = ict_random_embedding
    gt = ground_truth(model, yaw=0.5)
    gt.identity.zero_()
    gt.expression.zero_()
    obs = observe(model, gt, noise_px=0.0)
    emb = landmark_embedding(model, "mediapipe478")
    pts = Scene(model, gt).embedded("mediapipe478")[0].numpy()
    r, t = solve_pose(pts, obs.landmarks, np.ones(478), gt.K()[0].numpy())
    np.testing.assert_allclose(r, gt.rotation[0].numpy(), atol=1e-3)
    np.testing.assert_allclose(t, gt.translation[0].numpy(), atol=1e-2)
    assert len(emb) == 478


def test_initialise_gets_close(ict_random_embedding):
    model = ict_random_embedding
    gt = ground_truth(model, yaw=0.4)
    obs = observe(model, gt, noise_px=0.5)
    emb = landmark_embedding(model, "mediapipe478")
    state = initialise(model, emb, obs.landmarks, np.ones(478), (512, 512), focal=1100.0)
    assert abs(state.rotation[0, 1] - 0.4) < 0.05
    # the linear shape solve explains the landmarks far better than the mean face with the same pose
    mean_state = state.detached()
    mean_state.identity.zero_()
    mean_state.expression.zero_()

    def rmse(s):
        pix = Scene(model, s).project(Scene(model, s).embedded("mediapipe478"))[0][0].numpy()
        return float(np.sqrt(((pix - obs.landmarks) ** 2).sum(1).mean()))

    assert rmse(state) < 0.5 * rmse(mean_state)
    assert rmse(state) < 3.0
