"""Camera rigs: a synthetic 3-camera rig written as COLMAP text, NeRF transforms.json and OpenCV YAML, converted
to rig.json and read back; K, R, t and the pixels of 3D points must equal the truth. Plus the NeRF axis flip
on its own, the uncalibrated rig, multi-view folder discovery and the one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fitter.io import ImageError, Rig, RigCamera, RigError, convert_rig, discover_multiview, load_rig, save_rig
from fitter.synth.clips import look_at

PIXEL_TOL = 1e-6


@pytest.fixture(scope="module")
def truth() -> dict[str, RigCamera]:
    """Three cameras 60-70 cm from the origin of a z-up world, each looking at the origin (cm, OpenCV axes)."""
    cams = {}
    specs = [("left", -40.0, 10.0, (1000.0, 1010.0, 318.0, 242.5), (480, 640)),
             ("centre", 0.0, -5.0, (1500.0, 1500.0, 400.25, 300.0), (600, 800)),
             ("right", 45.0, 20.0, (900.0, 905.0, 250.0, 330.0), (640, 480))]
    for name, azimuth, elevation, (fx, fy, cx, cy), size in specs:
        a, e = np.radians(azimuth), np.radians(elevation)
        distance = 60.0 + abs(azimuth) / 4
        centre = distance * np.array([np.sin(a) * np.cos(e), -np.cos(a) * np.cos(e), np.sin(e)])
        R = look_at(centre, np.zeros(3), down=(0.0, 0.0, -1.0))
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
        cams[name] = RigCamera(name, size, K, R, -R @ centre)
    return cams


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    return np.random.default_rng(1).uniform(-10, 10, (12, 3))


def _check(rig, truth, points, scale_tol=1e-9):
    assert sorted(rig.cameras) == sorted(truth)
    for name, cam in truth.items():
        got = rig.cameras[name]
        assert got.image_size == cam.image_size
        np.testing.assert_allclose(got.K, cam.K, atol=1e-9)
        np.testing.assert_allclose(got.R, cam.R, atol=1e-9)
        np.testing.assert_allclose(got.t, cam.t, atol=scale_tol)
        assert (got.to_camera(points)[:, 2] > 0).all()  # the points are in front of every camera
        assert np.abs(got.project(points) - cam.project(points)).max() < PIXEL_TOL


def _roundtrip(rig, tmp_path):
    save_rig(rig, tmp_path / "rig.json")
    data = json.loads((tmp_path / "rig.json").read_text())
    assert data["units"] == "cm" and data["distortion_applied"] is False
    return load_rig(tmp_path / "rig.json")


# -- COLMAP ----------------------------------------------------------------------------------------------
def write_colmap(folder: Path, truth: dict[str, RigCamera], metres: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cam_lines, image_lines = ["# Camera list with one line of data per camera:"], ["# Image list"]
    for i, (name, cam) in enumerate(truth.items(), 1):
        fx, fy, cx, cy = (float(v) for v in (cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]))
        h, w = cam.image_size
        if name == "right":  # distortion is carried through, not applied
            cam_lines.append(f"{i} OPENCV {w} {h} {fx!r} {fy!r} {cx!r} {cy!r} 0.01 -0.002 0.0001 0.0003")
        else:
            cam_lines.append(f"{i} PINHOLE {w} {h} {fx!r} {fy!r} {cx!r} {cy!r}")
        qx, qy, qz, qw = Rotation.from_matrix(cam.R).as_quat().tolist()
        t = (cam.t / 100.0 if metres else cam.t).tolist()
        image_lines.append(f"{i} {qw!r} {qx!r} {qy!r} {qz!r} {t[0]!r} {t[1]!r} {t[2]!r} {i} {name}.png")
        image_lines.append("" if i != 2 else "10.5 20.5 -1 30.0 40.0 7")  # POINTS2D: empty or not
    (folder / "cameras.txt").write_text("\n".join(cam_lines) + "\n")
    (folder / "images.txt").write_text("\n".join(image_lines) + "\n")


def test_colmap(tmp_path, truth, points):
    write_colmap(tmp_path / "sparse" / "0", truth, metres=True)
    rig = convert_rig(tmp_path, units="m")  # COLMAP's folder layout found from the project folder
    assert rig.source["format"] == "colmap" and rig.scale == 100.0 and not rig.warnings
    assert rig.cameras["right"].distortion == {"model": "OPENCV", "params": {"k1": 0.01, "k2": -0.002,
                                                                              "p1": 0.0001, "p2": 0.0003}}
    assert rig.cameras["left"].distortion is None
    _check(_roundtrip(rig, tmp_path), truth, points, scale_tol=1e-9)


def test_colmap_unknown_units_warn_and_errors_name_the_file(tmp_path, truth):
    write_colmap(tmp_path, truth, metres=False)
    rig = convert_rig(tmp_path / "cameras.txt")
    assert rig.scale == 1.0 and "units are unknown" in rig.warnings[0]
    np.testing.assert_allclose(rig.cameras["left"].t, truth["left"].t)
    text = (tmp_path / "cameras.txt").read_text()
    (tmp_path / "cameras.txt").write_text(text.replace("PINHOLE", "WEIRD_MODEL", 1))
    with pytest.raises(RigError, match="cameras.txt: line 2: camera model WEIRD_MODEL is not supported"):
        convert_rig(tmp_path, format="colmap")
    (tmp_path / "cameras.txt").write_text(text.replace(" 1010.0", "", 1))
    with pytest.raises(RigError, match="PINHOLE takes 4 parameters, found 3"):
        convert_rig(tmp_path, format="colmap")
    (tmp_path / "images.txt").unlink()
    with pytest.raises(RigError, match="has no COLMAP text model") as err:
        convert_rig(tmp_path, format="colmap")
    assert "\n" not in str(err.value)


# -- NeRF ------------------------------------------------------------------------------------------------
GL_TO_CV = np.diag([1.0, -1.0, -1.0])


def nerf_frame(cam: RigCamera, file_path: str, scale: float = 1.0) -> dict:
    c2w = np.eye(4)
    c2w[:3, :3] = cam.R.T @ GL_TO_CV  # camera -> world, OpenGL camera axes
    c2w[:3, 3] = cam.centre / scale
    fx, fy, cx, cy = (float(v) for v in (cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]))
    h, w = cam.image_size
    return {"file_path": file_path, "transform_matrix": c2w.tolist(), "fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy,
            "w": w, "h": h}


def test_nerf(tmp_path, truth, points):
    frames = [nerf_frame(cam, f"{name}/0001.png", scale=0.1) for name, cam in truth.items()]  # in mm
    frames.append(nerf_frame(truth["left"], "left/0002.png", scale=0.1))  # a later frame of the same camera
    (tmp_path / "transforms.json").write_text(json.dumps({"camera_model": "OPENCV", "frames": frames}))
    rig = convert_rig(tmp_path / "transforms.json", units="mm")
    assert rig.source["format"] == "nerf" and rig.scale == 0.1
    assert rig.cameras["left"].image == "left/0001.png" and "ignoring left/0002.png" in rig.warnings[0]
    _check(_roundtrip(rig, tmp_path), truth, points, scale_tol=1e-9)


def test_nerf_axis_flip_puts_points_in_front(tmp_path):
    """A Blender camera 50 cm from the origin on -y, rotated 90 deg about x (the usual front view of a z-up
    scene): it looks along +y with +z up. The origin must project to the image centre, in front of the
    camera; world +x to the right of it and world +z above it."""
    c2w = np.eye(4)
    c2w[:3, :3] = Rotation.from_euler("x", 90, degrees=True).as_matrix()
    c2w[:3, 3] = [0.0, -50.0, 0.0]
    cv2.imwrite(str(tmp_path / "front.png"), np.zeros((200, 300, 3), np.uint8))  # size read from the image
    data = {"camera_angle_x": 2 * np.arctan(150 / 300.0), "frames": [{"file_path": "./front",
                                                                     "transform_matrix": c2w.tolist()}]}
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    cam = convert_rig(tmp_path, units="cm").cameras["front"]
    assert cam.image_size == (200, 300) and cam.K[0, 0] == pytest.approx(300.0)
    assert cam.to_camera(np.zeros((1, 3)))[0] == pytest.approx([0, 0, 50.0])
    centre, right, up = cam.project(np.array([[0, 0, 0], [5.0, 0, 0], [0, 0, 5.0]]))
    assert centre == pytest.approx([150.0, 100.0])
    assert right[0] == pytest.approx(180.0) and right[1] == pytest.approx(100.0)
    assert up[0] == pytest.approx(150.0) and up[1] == pytest.approx(70.0)


def test_nerf_rejects_scaled_rotation(tmp_path, truth):
    frame = nerf_frame(truth["left"], "a.png")
    frame["transform_matrix"] = (np.asarray(frame["transform_matrix"]) * 2).tolist()
    (tmp_path / "t.json").write_text(json.dumps({"frames": [frame]}))
    with pytest.raises(RigError, match="t.json: frame 'a.png': rotation is not orthonormal"):
        convert_rig(tmp_path / "t.json")


# -- OpenCV ----------------------------------------------------------------------------------------------
def write_opencv(path: Path, cams: dict[str, RigCamera], mm: bool, top_level: bool = False) -> None:
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    for name, cam in cams.items():
        if not top_level:
            fs.startWriteStruct(name, cv2.FileNode_MAP)
        K = cam.K.copy()
        K[:2, 2] -= 0.5  # OpenCV's pixel centres are at integers
        fs.write("camera_matrix" if name == "centre" else "K", K)
        fs.write("image_width", cam.image_size[1])
        fs.write("image_height", cam.image_size[0])
        fs.write("dist", np.array([[0.1, -0.05, 0.001, 0.002, 0.01]]))
        if name == "left":
            fs.write("R", cam.R)
        else:
            fs.write("rvec", cv2.Rodrigues(cam.R)[0])
        fs.write("T", (cam.t * 10.0 if mm else cam.t).reshape(3, 1))
        if not top_level:
            fs.endWriteStruct()
    fs.release()


def test_opencv(tmp_path, truth, points):
    write_opencv(tmp_path / "rig.yaml", truth, mm=True)
    rig = convert_rig(tmp_path / "rig.yaml", units="mm")
    assert rig.source["format"] == "opencv" and rig.scale == 0.1
    assert rig.cameras["centre"].distortion["params"] == {"k1": 0.1, "k2": -0.05, "p1": 0.001, "p2": 0.002,
                                                          "k3": 0.01}
    _check(_roundtrip(rig, tmp_path), truth, points, scale_tol=1e-9)
    single = {"right": truth["right"]}
    write_opencv(tmp_path / "right.yml", single, mm=False, top_level=True)  # one camera, named after the file
    _check(convert_rig(tmp_path / "right.yml", units="cm"), single, points)


def test_opencv_errors(tmp_path):
    fs = cv2.FileStorage(str(tmp_path / "c.yaml"), cv2.FILE_STORAGE_WRITE)
    fs.write("K", np.eye(3))
    fs.release()
    with pytest.raises(RigError, match="c.yaml: camera 'c' has no image_width / image_height"):
        convert_rig(tmp_path / "c.yaml")
    (tmp_path / "empty.yaml").write_text("%YAML:1.0\nfoo: 1\n")
    with pytest.raises(RigError, match="empty.yaml: has no camera"):
        convert_rig(tmp_path / "empty.yaml")


# -- uncalibrated, discovery, rig.json checks --------------------------------------------------------------
def _image(path: Path, size=(24, 32)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((*size, 3), np.uint8))


def test_multiview_folders_match_frames_by_number(tmp_path):
    for n in (1, 2, 3):
        _image(tmp_path / "camA" / f"{n:04d}.png")
        if n != 2:
            _image(tmp_path / "camB" / f"frame_{n}.jpg", size=(40, 30))
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "camC").mkdir()  # its images went missing: said, not silently dropped
    found = discover_multiview(tmp_path)
    assert found.kind == "images" and found.cameras == ["camA", "camB"] and found.frames == [1, 3]
    assert found.images["camB"][3].name == "frame_3.jpg"
    assert "camA: 1 frame(s) that other cameras lack" in found.warnings[0]
    assert "folder(s) camC hold no images: not used as cameras" in found.warnings
    rig = convert_rig(tmp_path, format="none")
    assert not rig.calibrated and rig.cameras["camB"].image_size == (40, 30) and rig.cameras["camA"].K is None
    np.testing.assert_array_equal(rig.cameras["camA"].R, np.eye(3))
    np.testing.assert_array_equal(rig.cameras["camA"].t, np.zeros(3))
    with_focal = _roundtrip(convert_rig(tmp_path, format="none", focal_px=500.0), tmp_path / "out")
    assert with_focal.cameras["camB"].K[0, 2] == 15.0 and not with_focal.calibrated


def test_multiview_videos_and_bad_layouts(tmp_path):
    for cam, n in (("front", 6), ("side", 5)):
        writer = cv2.VideoWriter(str(tmp_path / f"{cam}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (16, 16))
        for _ in range(n):
            writer.write(np.zeros((16, 16, 3), np.uint8))
        writer.release()
    found = discover_multiview(tmp_path)
    assert found.kind == "videos" and found.cameras == ["front", "side"] and found.frames == list(range(5))
    assert "differ in length" in found.warnings[0]
    rig = convert_rig(tmp_path, format="none")
    rig.cameras.pop("side")
    with pytest.raises(ImageError, match="camera\\(s\\) side are not in the rig \\(front\\)"):
        discover_multiview(tmp_path, rig=rig)
    _image(tmp_path / "top" / "1.png")
    with pytest.raises(ImageError, match="mixes camera folders"):
        discover_multiview(tmp_path)
    with pytest.raises(ImageError, match="no camera folders"):
        discover_multiview(tmp_path / "top")


def test_load_rig_rejects_other_files(tmp_path):
    (tmp_path / "transforms.json").write_text(json.dumps({"frames": []}))
    with pytest.raises(RigError, match="is not a facefit rig.json") as err:
        load_rig(tmp_path / "transforms.json")
    assert "\n" not in str(err.value)
    with pytest.raises(RigError, match="rig file does not exist"):
        load_rig(tmp_path / "nope.json")


def test_impossible_cameras_are_refused(tmp_path, truth):
    save_rig(Rig(dict(truth), True, 1.0, {}, []), tmp_path / "rig.json")
    good = json.loads((tmp_path / "rig.json").read_text())

    def refused(edit, message):
        data = json.loads(json.dumps(good))
        edit(data["cameras"]["centre"])
        (tmp_path / "bad.json").write_text(json.dumps(data))
        with pytest.raises(RigError, match=message) as err:
            load_rig(tmp_path / "bad.json")
        assert "\n" not in str(err.value) and "bad.json" in str(err.value)

    refused(lambda c: c["K"][0].__setitem__(0, -1500.0),
            "focal lengths fx = -1500, fy = 1500 px; both must be positive")
    refused(lambda c: c["K"].__setitem__(2, [0.0, 0.0, 2.0]), "last row")
    refused(lambda c: c["t"].__setitem__(0, float("nan")), "expected finite numbers, got \\[nan")
    refused(lambda c: c["t"].__setitem__(2, 1e30), "camera 'centre' sits 1e\\+30 cm from the world origin")
    refused(lambda c: c.__setitem__("t", [1.0, 2.0]), "expected numbers of shape \\(3,\\), got shape \\(2,\\)")
    assert load_rig(tmp_path / "rig.json").cameras["centre"].K[0, 0] == 1500.0  # the good one reads back


def test_converted_calibrations_are_checked_too(tmp_path):
    fs = cv2.FileStorage(str(tmp_path / "cam.yaml"), cv2.FILE_STORAGE_WRITE)
    fs.write("K", np.array([[-800.0, 0, 320], [0, -800.0, 240], [0, 0, 1]]))
    fs.write("image_width", 640)
    fs.write("image_height", 480)
    fs.release()
    with pytest.raises(RigError, match="cam.yaml: camera 'cam': focal lengths fx = -800, fy = -800 px"):
        convert_rig(tmp_path / "cam.yaml")


def test_non_finite_converted_calibrations_are_refused(tmp_path):
    frame = {"file_path": "cam0/1.png", "fl_x": 500.0, "fl_y": 500.0, "cx": float("nan"), "cy": 12.0, "w": 32,
             "h": 24, "transform_matrix": np.eye(4).tolist()}
    (tmp_path / "transforms.json").write_text(json.dumps({"frames": [frame]}))
    with pytest.raises(RigError, match="transforms.json: camera '1': K holds numbers that are not finite"):
        convert_rig(tmp_path / "transforms.json")


def test_sizes_are_read_upright_as_images_are_loaded(tmp_path):
    from PIL import Image

    for cam in ("camA", "camB"):
        (tmp_path / cam).mkdir()
        exif = Image.Exif()
        exif[274] = 6  # stored 80 wide x 48 high, shown turned by 90 degrees: 48 wide x 80 high
        Image.new("RGB", (80, 48)).save(tmp_path / cam / "1.jpg", exif=exif)
    rig = convert_rig(tmp_path, format="none", focal_px=100.0)
    assert rig.cameras["camA"].image_size == (80, 48) and rig.cameras["camA"].K[0, 2] == 24.0
    from fitter.io import load_image

    assert load_image(tmp_path / "camA" / "1.jpg").size == (80, 48)


def test_units_and_scale_are_alternatives(tmp_path, truth):
    write_opencv(tmp_path / "cams.yaml", truth, mm=False)
    with pytest.raises(ValueError, match="give the source's units or a scale to cm, not both"):
        convert_rig(tmp_path / "cams.yaml", units="m", scale=100.0)
    with pytest.raises(ValueError, match="scale must be a positive number, got '2'"):
        convert_rig(tmp_path / "cams.yaml", scale="2")
    assert convert_rig(tmp_path / "cams.yaml", scale=np.float32(100.0)).scale == 100.0

