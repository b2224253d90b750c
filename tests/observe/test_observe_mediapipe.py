"""fitter.observe with the real MediaPipe face landmarker on repository images and images made from them."""
from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest
from PIL import Image

from fitter.io import LoadedImage, load_image
from fitter.observe import FaceObservation, ImageObservation, observe_image, resolve_settings
from fitter.observe.geometry import extract_region
from fitter.observe.mediapipe_backend import (ROTATED, TURNED, eye_tilt, head_roll, mirror_back,
                                              mirror_permutation, turned_back, turns_upright)
from fitter.observe import quarter_turns, was_turned
from paths import EXAMPLES

EXAMPLE_FILES = ["grace_hopper.jpg", "astronaut.png", "Bryan.png", "Luciano.png", "Chris.jpeg"]

# MediaPipe mesh indices: outer eye corners (subject's right, left), nose tip, upper/lower lip, chin
R_EYE, L_EYE, NOSE, UPPER_LIP, LOWER_LIP, CHIN = 33, 263, 1, 13, 14, 152


def observe(img, **kw) -> ImageObservation:
    return observe_image(img, cache=False, **kw)


@pytest.fixture(scope="module")
def upright():
    """Observations of the example images (computed once)."""
    return {name: observe(load_image(EXAMPLES / name)) for name in EXAMPLE_FILES}


def _check_face(face: FaceObservation, size: tuple[int, int]) -> None:
    h, w = size
    p = face.landmarks
    assert face.landmark_format == "mediapipe478" and p.shape == (478, 2) and p.dtype == np.float32
    assert np.isfinite(p).all()
    x0, y0, x1, y1 = face.bbox
    assert (p[:, 0] >= x0 - 1e-3).all() and (p[:, 0] <= x1 + 1e-3).all()
    assert (p[:, 1] >= y0 - 1e-3).all() and (p[:, 1] <= y1 + 1e-3).all()
    assert -1 <= x0 < x1 <= w + 1 and -1 <= y0 < y1 <= h + 1
    # anatomy of an upright face: eyes above the nose tip above the mouth above the chin; right eye on the left
    assert p[R_EYE, 0] < p[NOSE, 0] < p[L_EYE, 0]
    assert max(p[R_EYE, 1], p[L_EYE, 1]) < p[NOSE, 1] < p[UPPER_LIP, 1] <= p[LOWER_LIP, 1] + 1 < p[CHIN, 1]
    assert face.inter_ocular > 0.2 * (x1 - x0)
    assert face.landmarks_z.shape == (478,) and np.isfinite(face.landmarks_z).all()
    assert face.transform.shape == (4, 4) and np.isfinite(face.transform).all()
    assert np.allclose(face.transform[3], [0, 0, 0, 1], atol=1e-5)
    assert len(face.blendshapes) == 52 and "jawOpen" in face.blendshapes
    assert all(0.0 <= v <= 1.0 for v in face.blendshapes.values())
    assert face.roi.shape == (4,)


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_examples_one_face_each(upright, name):
    obs = upright[name]
    img = load_image(EXAMPLES / name)
    assert obs.image_size == img.size and obs.source == str(EXAMPLES / name)
    assert len(obs.faces) == 1 and not obs.warnings
    _check_face(obs.faces[0], img.size)
    assert (obs.faces[0].landmark_weights == 1).all()


# stored pixels for EXIF orientations 6 / 3 / 8 (what a camera held sideways writes)
_STORE = {3: lambda a: a[::-1, ::-1], 6: lambda a: np.rot90(a, k=1), 8: lambda a: np.rot90(a, k=-1)}


@pytest.mark.parametrize("orientation", [6, 3, 8])
def test_exif_rotated_photo_gives_upright_landmarks(upright, tmp_path, orientation):
    src = load_image(EXAMPLES / "grace_hopper.jpg")
    im = Image.fromarray(np.ascontiguousarray(_STORE[orientation](src.rgb)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"rot{orientation}.jpg"
    im.save(path, quality=95, exif=exif.tobytes())
    obs = observe(load_image(path))
    assert obs.image_size == src.size
    assert len(obs.faces) == 1
    _check_face(obs.faces[0], src.size)
    ref = upright["grace_hopper.jpg"].faces[0].landmarks
    err = np.linalg.norm(obs.faces[0].landmarks - ref, axis=1)
    assert np.median(err) < 1.0 and err.max() < 2.5, (np.median(err), err.max())


def test_raw_rotated_pixels_map_back(upright):
    """Landmarks found on the sideways (un-oriented) pixels, mapped back through the rotation, agree."""
    src = load_image(EXAMPLES / "Luciano.png")
    h, w = src.size
    stored = np.ascontiguousarray(np.rot90(src.rgb, k=1))  # what orientation 6 stores
    obs = observe(LoadedImage.from_array(stored))
    q = obs.faces[0].landmarks  # in the stored frame (W wide... x in [0, h], y in [0, w])
    back = np.stack([w - q[:, 1], q[:, 0]], axis=1)  # rotate 90 degrees clockwise into the upright frame
    ref = upright["Luciano.png"].faces[0].landmarks
    err = np.linalg.norm(back - ref, axis=1)
    assert np.median(err) < 3.0, np.median(err)


class TestUpsideDown:
    """An image stored upside down without EXIF (MediaPipe lays its landmarks out upright on an upside-down face,
    eyes on the mouth, with full confidence) is detected turned back, with a warning; upright and sideways images
    are left as they are."""

    @pytest.mark.parametrize("name", ["grace_hopper.jpg", "astronaut.png", "Chris.jpeg"])
    def test_half_turned_photo_gives_the_upright_face_turned(self, upright, name):
        src = load_image(EXAMPLES / name)
        h, w = src.size
        obs = observe(LoadedImage.from_array(np.ascontiguousarray(src.rgb[::-1, ::-1])))
        assert len(obs.faces) == 1 and was_turned(obs.warnings), obs.warnings
        ref = upright[name].faces[0]
        back = np.array([w, h], np.float32) - obs.faces[0].landmarks
        assert np.abs(back - ref.landmarks).max() < 0.5  # the same pixels, seen the same way
        spin = np.diag([-1.0, -1.0, 1.0, 1.0])  # the camera turned about its axis
        assert np.allclose(spin @ obs.faces[0].transform, ref.transform, atol=1e-3)

    @pytest.mark.parametrize("name", EXAMPLE_FILES)
    def test_upright_images_stay_and_sideways_ones_are_read_upright(self, upright, name):
        """A photo on its side (turned a quarter counter-clockwise) is read in the view that has it upright: its
        landmarks are the upright photo's, turned (MediaPipe reads a sideways face, but worse)."""
        assert not was_turned(upright[name].warnings)
        src = load_image(EXAMPLES / name)
        h, w = src.size
        obs = observe(LoadedImage.from_array(np.ascontiguousarray(np.rot90(src.rgb, k=1))))
        assert quarter_turns(obs.warnings) == 3 and len(obs.faces) == 1, obs.warnings
        ref = upright[name].faces[0].landmarks  # rot90(image, 1) takes (x, y) to (y, W - x)
        assert np.abs(obs.faces[0].landmarks - np.stack([ref[:, 1], w - ref[:, 0]], 1)).max() < 0.5

    @staticmethod
    def _sideways_wild(ict, index: int, seed: int):
        """A wild render, its upright observation, and its copy turned a quarter clockwise (rot90's k = 3)."""
        from fitter.synth.cases import render_case, sample_case

        image = render_case(ict, sample_case(ict, index, seed, 512, appearance="wild")).image
        side = np.ascontiguousarray(np.rot90(image, 3))
        assert not observe(LoadedImage.from_array(side), rotated=False).faces  # as it is: no face found
        # rot90(image, 3) takes the upright (x, y) to (H - y, x)
        ref = observe(LoadedImage.from_array(image)).faces[0]
        expected = np.stack([image.shape[0] - ref.landmarks[:, 1], ref.landmarks[:, 0]], 1)
        return ref, observe(LoadedImage.from_array(side)), expected

    def test_a_face_on_its_side_that_nothing_finds_is_found_turned_a_quarter(self, ict):
        """Wild render 5 of seed 0 turned a quarter clockwise: MediaPipe finds no face in it as it is; turned a
        quarter back (two of three turned passes vote for it) it is the upright render."""
        ref, obs, expected = self._sideways_wild(ict, 5, 0)
        assert quarter_turns(obs.warnings) == 1 and len(obs.faces) == 1, obs.warnings
        assert np.abs(obs.faces[0].landmarks - expected).max() < 0.5
        spin = np.eye(4)
        spin[:2, :2] = [[0.0, -1.0], [1.0, 0.0]]  # the camera turned a quarter about its axis
        assert np.allclose(spin @ obs.faces[0].transform, ref.transform, atol=1e-3)

    def test_a_face_rolled_near_45_degrees_on_its_side_is_read_where_it_is(self, ict):
        """Wild render 15 of seed 2 (head thrown back, rolled ~49 deg by its eyes-to-mouth line) turned a quarter:
        one turned pass misreads it (a single vote turned the image the wrong way, with upright landmarks on a
        face lying otherwise); now the face is found in a view that reads it, and its landmarks are the upright
        render's within the detector's own scatter."""
        _, obs, expected = self._sideways_wild(ict, 15, 2)
        assert was_turned(obs.warnings) and len(obs.faces) == 1
        assert np.median(np.linalg.norm(obs.faces[0].landmarks - expected, axis=1)) < 5.0

    def test_setting_off_keeps_the_old_reading(self, upright):
        src = load_image(EXAMPLES / "grace_hopper.jpg")
        obs = observe(LoadedImage.from_array(np.ascontiguousarray(src.rgb[::-1, ::-1])), rotated=False)
        assert not was_turned(obs.warnings)

    def test_turns_upright(self):
        assert [turns_upright(np.array(d)) for d in ([0, 1], [1, 0], [0, -1], [-1, 0])] == [0, 3, 2, 1]

    def test_turned_back_inverts_the_half_turn(self):
        h, w = 30, 50
        points = np.random.default_rng(0).uniform([0, 0], [w, h], (478, 2)).astype(np.float32)
        transform = np.eye(4, dtype=np.float32)
        transform[:3, 3] = [1.0, 2.0, -40.0]
        roi = np.array([-5, 2, 45, 30], np.float32)
        face = FaceObservation(points, "mediapipe478", roi, transform=transform, roi=roi)
        back = turned_back(face, w, h)
        assert np.allclose(back.landmarks, [w, h] - points)
        assert np.allclose(back.roi, [5, 0, 55, 28]) and np.allclose(back.bbox, [5, 0, 55, 28])
        assert np.allclose(back.transform[:3, 3], [-1.0, -2.0, -40.0])  # the head's depth stays, x and y turn
        assert np.allclose(turned_back(back, w, h).landmarks, points, atol=1e-4)

    @pytest.mark.parametrize("turns", [1, 2, 3])
    def test_turned_back_maps_each_pixel_to_itself(self, turns):
        """A point at a pixel's centre in np.rot90(image, turns) comes back to the centre of the same pixel."""
        h, w = 7, 11
        image = np.arange(h * w).reshape(h, w)
        turned = np.rot90(image, turns)
        rows, cols = np.mgrid[: turned.shape[0], : turned.shape[1]]
        points = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], 1).astype(np.float32)
        box = np.array([0, 0, turned.shape[1], turned.shape[0]], np.float32)
        back = turned_back(FaceObservation(points, "mediapipe478", box, roi=box), w, h, turns)
        i, j = np.divmod(turned.ravel(), w)  # where each turned pixel's value lies in the image
        assert np.allclose(back.landmarks, np.stack([j + 0.5, i + 0.5], 1))
        assert np.allclose(back.bbox, [0, 0, w, h]) and np.allclose(back.roi, [0, 0, w, h])

    def test_warning_is_recognised(self):
        assert was_turned([ROTATED]) and not was_turned(["no face found"])
        assert [quarter_turns([TURNED[k]]) for k in (1, 2, 3)] == [1, 2, 3] and quarter_turns([]) == 0


class TestTiltedFaces:
    """A face tilted in the image (eye line and head roll beyond level_above_deg) is read again in a crop turned
    so that its eye line is level: MediaPipe reads tilted faces worse (docs/observations.md)."""

    def test_eye_tilt_and_head_roll(self):
        points = np.zeros((478, 2), np.float32)
        points[263] = [np.cos(np.radians(30)), np.sin(np.radians(30))]  # clockwise on screen (y down)
        assert eye_tilt(points) == pytest.approx(30.0, abs=1e-4)
        spin = np.eye(4)
        c, s = np.cos(np.radians(-30)), np.sin(np.radians(-30))
        spin[:2, :2] = [[c, -s], [s, c]]  # the head rolled clockwise on screen: y up, so -30 deg
        assert head_roll(spin) == pytest.approx(-30.0)
        assert head_roll(np.full((4, 4), np.nan)) == 0.0

    @pytest.mark.parametrize("name", ["grace_hopper.jpg", "Chris.jpeg"])
    def test_a_tilted_photo_is_read_as_it_is_read_upright(self, upright, name):
        import cv2

        image = load_image(EXAMPLES / name).rgb
        h, w = image.shape[:2]
        turn = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), 45, 1.0)  # 45 deg counter-clockwise, centred
        tilted = np.ascontiguousarray(cv2.warpAffine(image, turn, (w, h), borderMode=cv2.BORDER_REFLECT101))
        centre = np.array([w / 2, h / 2])
        expected = (upright[name].faces[0].landmarks - centre) @ turn[:, :2].T + centre

        def off(face) -> float:
            return float(np.median(np.linalg.norm(face.landmarks - expected, axis=1)))

        as_read = observe(LoadedImage.from_array(tilted), level_above_deg=0.0).faces[0]
        level = observe(LoadedImage.from_array(tilted)).faces[0]
        assert off(level) < 0.6 and off(level) < 0.7 * off(as_read), (off(level), off(as_read))
        # the transform is turned back with the crop: the same head as the tilted image's own reading
        a, b = as_read.transform[:3, :3], level.transform[:3, :3]
        a, b = a / np.cbrt(np.linalg.det(a)), b / np.cbrt(np.linalg.det(b))
        assert np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1))) < 5.0
        assert head_roll(level.transform) > 30.0


@pytest.mark.parametrize("name", ["astronaut.png", "grace_hopper.jpg", "Chris.jpeg"])
def test_a_face_that_fills_the_image_is_found_with_a_border(upright, name):
    """A crop inside the face's landmark box (10 % off each side; ID photos, dataset crops): MediaPipe's detector
    finds nothing without context around the face; the second pass, with a grey border, finds it where it is."""
    src = load_image(EXAMPLES / name)
    ref = upright[name].faces[0].landmarks
    (x0, y0), (x1, y1) = ref.min(0), ref.max(0)
    dx, dy = 0.2 * (x1 - x0), 0.2 * (y1 - y0)
    a, b, c, d = int(x0 + dx), int(y0 + dy), int(x1 - dx), int(y1 - dy)
    obs = observe(LoadedImage.from_array(np.ascontiguousarray(src.rgb[b:d, a:c])))
    assert len(obs.faces) == 1
    face = obs.faces[0]
    inside = face.landmark_weights > 0
    assert 0.25 < inside.mean() < 1.0  # the cut-off landmarks lie on the border: weight 0
    err = np.linalg.norm(face.landmarks + [a, b] - ref, axis=1)
    assert np.median(err) < 4.0, np.median(err)


@pytest.mark.parametrize("shape", [(300, 4000), (4000, 300)])
def test_a_face_in_a_panorama_strip_is_found(upright, shape):
    """A 4000 x 300 strip is shrunk to 1920 x 144 for detection, where tiles of half and a quarter of the long
    side hold the face as a speck; tiles as wide as the strip is tall find it."""
    face = load_image(EXAMPLES / "grace_hopper.jpg").rgb
    h, w = shape
    side = min(h, w)
    scale = side / max(face.shape[:2])
    small = cv2.resize(face, (round(face.shape[1] * scale), round(face.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.full((h, w, 3), 128, np.uint8)
    y0, x0 = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    obs = observe(LoadedImage.from_array(canvas))
    assert len(obs.faces) == 1
    ref = upright["grace_hopper.jpg"].faces[0].landmarks * scale + [x0, y0]
    assert np.median(np.linalg.norm(obs.faces[0].landmarks - ref, axis=1)) < 2.0


def test_grayscale_rgba_and_16bit_images(upright, tmp_path):
    rgb = load_image(EXAMPLES / "astronaut.png").rgb
    ref = upright["astronaut.png"].faces[0].landmarks
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:, :60, 3] = 0  # a transparent strip at the left edge, away from the face
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    cv2.imwrite(str(tmp_path / "deep.png"), (rgb[:, :, ::-1].astype(np.uint16) * 257))
    for name, tol in [("gray.png", 6.0), ("rgba.png", 3.0), ("deep.png", 0.5)]:
        img = load_image(tmp_path / name)
        obs = observe(img)
        assert len(obs.faces) == 1, name
        _check_face(obs.faces[0], img.size)
        assert np.median(np.linalg.norm(obs.faces[0].landmarks - ref, axis=1)) < tol, name


def test_huge_image_maps_to_full_resolution(upright):
    src = load_image(EXAMPLES / "grace_hopper.jpg")
    ref = upright["grace_hopper.jpg"].faces[0]
    k = 6.5  # 517x606 -> 3360x3939 pasted in a 6000x4000 canvas at (1500, 30)
    big = cv2.resize(src.rgb, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    canvas = np.full((4000, 6000, 3), 90, np.uint8)
    canvas[30:30 + big.shape[0], 1500:1500 + big.shape[1]] = big
    obs = observe(LoadedImage.from_array(canvas))
    assert obs.image_size == (4000, 6000) and len(obs.faces) == 1
    face = obs.faces[0]
    _check_face(face, (4000, 6000))
    expected = ref.landmarks * k + np.array([1500, 30], np.float32)
    err = np.linalg.norm(face.landmarks - expected, axis=1)
    assert np.median(err) / (ref.inter_ocular * k) < 0.02, np.median(err)


@pytest.mark.parametrize("side", [115, 64])
def test_tiny_images(side):
    img = load_image(EXAMPLES / "Bryan.png")
    if side != 115:
        img = LoadedImage.from_array(cv2.resize(img.rgb, (side, side), interpolation=cv2.INTER_AREA))
    obs = observe(img)
    assert len(obs.faces) == 1
    _check_face(obs.faces[0], (side, side))


def test_tiny_image_is_enlarged_for_detection():
    """astronaut.png shrunk to 48x48 (a 10-px face): missed at its own size, found enlarged to min_side."""
    small = cv2.resize(load_image(EXAMPLES / "astronaut.png").rgb, (48, 48), interpolation=cv2.INTER_AREA)
    img = LoadedImage.from_array(small)
    assert observe(img, min_side=1).faces == []
    obs = observe(img)
    assert len(obs.faces) == 1 and obs.image_size == (48, 48)
    assert (obs.faces[0].landmarks >= 0).all() and (obs.faces[0].landmarks <= 48).all()


def _face_patch(name: str, side: int, upright) -> np.ndarray:
    img = load_image(EXAMPLES / name)
    b = upright[name].faces[0].bbox
    cx, cy, s = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, 1.6 * max(b[2] - b[0], b[3] - b[1])
    region = np.round([cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2]).astype(int)
    return extract_region(img.rgb, region, (side, side))


def test_two_faces_sorted_by_size_and_largest(upright):
    canvas = np.full((500, 900, 3), 150, np.uint8)
    canvas[50:450, 40:440] = _face_patch("Luciano.png", 400, upright)
    canvas[150:450, 560:860] = _face_patch("grace_hopper.jpg", 300, upright)
    img = LoadedImage.from_array(canvas)
    obs = observe(img)
    assert len(obs.faces) == 2
    for f in obs.faces:
        _check_face(f, img.size)
    big, small = obs.faces
    assert big.bbox[2] < 450 and small.bbox[0] > 550  # Luciano (left, bigger) first
    assert (big.bbox[2] - big.bbox[0]) > (small.bbox[2] - small.bbox[0])
    one = observe(img, largest=True)
    assert len(one.faces) == 1 and np.allclose(one.faces[0].landmarks, big.landmarks, atol=0.5)


def test_small_faces_of_a_group_are_found_by_the_tile_search(upright):
    """Four 150-px faces on a 1600x1000 canvas: too small for MediaPipe's short-range detector on the whole
    image, found by the tile search, each once, with its landmarks on the face."""
    rng = np.random.default_rng(0)
    canvas = cv2.GaussianBlur((rng.random((1000, 1600, 3)) * 60 + 100).astype(np.uint8), (0, 0), 5)
    spots = {"grace_hopper.jpg": (100, 150), "astronaut.png": (500, 600), "Luciano.png": (900, 200),
             "Chris.jpeg": (1300, 650)}
    for name, (x, y) in spots.items():
        canvas[y:y + 150, x:x + 150] = _face_patch(name, 150, upright)
    img = LoadedImage.from_array(canvas)
    whole_only = observe(img, search="none")
    obs = observe(img)
    assert len(whole_only.faces) < 4
    assert len(obs.faces) == 4
    centres = sorted((float(f.landmarks[NOSE, 0]), float(f.landmarks[NOSE, 1])) for f in obs.faces)
    for (cx, cy), (x, y) in zip(centres, sorted(spots.values())):
        assert x + 40 < cx < x + 110 and y + 40 < cy < y + 120
    for f in obs.faces:
        _check_face(f, img.size)


def test_face_cut_by_the_border_gets_zero_weights_outside(upright):
    patch = _face_patch("Luciano.png", 300, upright)
    canvas = np.full((600, 800, 3), 140, np.uint8)
    canvas[:200, 250:550] = patch[100:]  # the top third of the face region is outside the image
    obs = observe(LoadedImage.from_array(canvas))
    assert len(obs.faces) == 1
    f = obs.faces[0]
    outside = f.landmarks[:, 1] < 0
    assert outside.any() and (f.landmark_weights[outside] == 0).all() and (f.landmark_weights[~outside] == 1).all()
    assert any("extends past the image border" in w for w in obs.warnings)


def test_no_face_is_a_warning_not_an_error():
    noise = np.random.default_rng(3).integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    obs = observe(LoadedImage.from_array(noise, "noise.png"))
    assert obs.faces == [] and obs.image_size == (480, 640)
    assert any("no face" in w for w in obs.warnings)


def test_settings_are_checked():
    with pytest.raises(TypeError, match="unknown MediaPipe setting"):
        resolve_settings("mediapipe", bogus=1)
    with pytest.raises(ValueError, match="search"):
        resolve_settings("mediapipe", search="everywhere")
    with pytest.raises(ValueError, match="unknown detector"):
        resolve_settings("dlib")
    s = resolve_settings("mediapipe", largest=True, max_faces=3)
    assert s["largest"] is True and s["max_faces"] == 3 and s["backend"]["mediapipe"]


def test_concurrent_threads_share_the_landmarker_safely(upright):
    imgs = [load_image(EXAMPLES / n) for n in ("Luciano.png", "astronaut.png")]
    results: dict[int, ImageObservation] = {}

    def work(i):
        results[i] = observe(imgs[i % 2], search="none")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, obs in results.items():
        name = ("Luciano.png", "astronaut.png")[i % 2]
        assert np.allclose(obs.faces[0].landmarks, upright[name].faces[0].landmarks, atol=0.5)


def _child_observe(path: str):
    return observe(load_image(path), search="none").faces[0].landmarks


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_forked_worker_gets_its_own_landmarker(upright):
    path = str(EXAMPLES / "Luciano.png")
    observe(load_image(path))  # the parent's landmarker exists before the fork
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply(_child_observe, (path,))
    assert np.allclose(child, upright["Luciano.png"].faces[0].landmarks, atol=0.5)


def test_landmarker_closed_cleanly_at_exit():
    code = (
        "from fitter.observe import observe_image\n"
        f"o = observe_image({str(EXAMPLES / 'Bryan.png')!r}, cache=False)\n"
        "assert len(o.faces) == 1\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "TypeError" not in proc.stderr, proc.stderr


class TestMirrorAveraging:
    """Each face's landmarks are the mean of the image's and the mirror image's (mapped back)."""

    def test_pairing_is_an_involution_that_swaps_the_eyes(self):
        perm = mirror_permutation()
        assert perm.shape == (478,) and np.array_equal(perm[perm], np.arange(478))
        assert perm[R_EYE] == L_EYE and perm[L_EYE] == R_EYE
        assert perm[NOSE] == NOSE and perm[CHIN] == CHIN and perm[UPPER_LIP] == UPPER_LIP
        assert set(perm[468:473]) == set(range(473, 478))  # one iris's points are the other's

    def test_mirror_image_gives_the_mirrored_face(self):
        """Averaging is mirror-equivariant: both averages see the same two detections. A detector alone is
        not (its error is not mirror-symmetric), which is the error averaging cancels."""
        rgb = load_image(EXAMPLES / "Luciano.png").rgb
        width = rgb.shape[1]
        roi = np.array([0, 0, width, rgb.shape[0]], np.float32)
        gaps = {}
        for mirror in (False, True):
            a = observe(LoadedImage.from_array(rgb, "image.png"), mirror=mirror).faces[0]
            b = observe(LoadedImage.from_array(np.ascontiguousarray(rgb[:, ::-1]), "mirror.png"),
                        mirror=mirror).faces[0]
            gaps[mirror] = float(np.abs(mirror_back(b.landmarks, roi) - a.landmarks).mean())
            if mirror:
                assert a.blendshapes["eyeBlinkLeft"] == pytest.approx(b.blendshapes["eyeBlinkRight"], abs=1e-4)
        assert gaps[True] < 0.02, gaps
        assert gaps[False] > 10 * gaps[True], gaps

    def test_setting_must_be_a_boolean(self):
        with pytest.raises(TypeError, match="mirror"):
            resolve_settings("mediapipe", mirror="yes")
        assert resolve_settings("mediapipe")["mirror"] is True
