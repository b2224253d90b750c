"""facefit's own parser (fitter.observe.seg_parser): the crop's geometry, the way back onto the image, the
mirror, the missing-weights line, and the shipped weights on real photos."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.io import load_image
from fitter.observe import observe_image
from fitter.observe import seg_landmarks as sl
from fitter.observe import seg_parser as sp
from fitter.observe.segmentation import PART_NAMES, OwnParserWeightsMissingError, segment_faces
from paths import EXAMPLES


@pytest.fixture(scope="module")
def chris():
    img = load_image(EXAMPLES / "Chris.jpeg")
    return img, observe_image(img, cache=False).faces[0]


def rotate(points: np.ndarray, angle: float, centre: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return (points - centre) @ np.array([[c, s], [-s, c]]) + centre


class TestParserCrop:
    def test_eye_axis_horizontal_and_box_centred(self, chris):
        _, face = chris
        for angle in (0.0, 0.4, -1.0):
            pts = rotate(face.landmarks[:, :2], angle, np.array([200.0, 250.0]))
            a = sp.parser_crop(pts)
            moved = pts @ a[:, :2].T + a[:, 2]
            right, left = sl.eye_centres(sl.FaceObservation(landmarks=pts, landmark_format="mediapipe478",
                                                            bbox=np.r_[pts.min(0), pts.max(0)]))
            r, l_ = (a[:, :2] @ p + a[:, 2] for p in (right, left))
            assert abs(r[1] - l_[1]) < 1e-6 and l_[0] > r[0]  # the subject's left eye on the crop's right
            centre = (pts.min(0) + pts.max(0)) / 2
            np.testing.assert_allclose(a[:, :2] @ centre + a[:, 2], [sp.CROP / 2] * 2, atol=1e-6)
            scale = np.hypot(*a[0, :2])
            assert scale == pytest.approx(sp.CROP / (sp.CONTEXT * np.ptp(pts, 0).max()))
            assert np.all(np.abs(moved - sp.CROP / 2) < sp.CROP / 2 * 1.05)

    def test_pixel_centres_follow_the_convention(self):
        image = np.zeros((sp.CROP, sp.CROP), np.uint8)
        image[40, 30] = 255
        shift = np.array([[1.0, 0, 3], [0, 1.0, -2]])  # continuous coordinates: 3 right, 2 up
        out = sp.crop_image(image, shift, nearest=True)
        assert out[38, 33] == 255 and out.sum() == 255
        double = np.array([[2.0, 0, 0], [0, 2.0, 0]])  # pixel (30, 40)'s centre (30.5, 40.5) -> (61, 81)
        out = sp.crop_image(image, double, size=2 * sp.CROP, nearest=True)
        ys, xs = np.nonzero(out)
        assert set(xs) == {60, 61} and set(ys) == {80, 81}


class TestMirror:
    def test_sides_swap_and_swap_back(self):
        scores = np.arange(sp.CLASSES, dtype=float)
        m = sp.mirror_classes(scores)
        for a, b in (("left_eye", "right_eye"), ("left_brow", "right_brow")):
            assert m[PART_NAMES.index(a) + 1] == PART_NAMES.index(b) + 1
        for part in ("nose", "upper_lip", "lower_lip", "skin"):
            assert m[PART_NAMES.index(part) + 1] == PART_NAMES.index(part) + 1
        np.testing.assert_array_equal(sp.mirror_classes(m), scores)


class RedIsSkin(torch.nn.Module):
    """A stand-in for the network: red pixels are skin, others none (checks the way back, not the parsing)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.full((x.shape[0], sp.CLASSES) + x.shape[2:], -20.0)
        out[:, 0] = 0.0
        out[:, PART_NAMES.index("skin") + 1] = 20.0 * (x[:, 0] - x[:, 1] - 1.5)  # the disk: ~3.1; skin: < 0.5
        return out


class TestParse:
    def test_labels_land_where_the_pixels_are(self, chris):
        img, face = chris
        rgb = (img.rgb // 4).copy()  # dull: nothing is red
        lo, hi = face.landmarks[:, :2].min(0), face.landmarks[:, :2].max(0)
        cx, cy = ((lo + hi) / 2 + [0.15 * (hi - lo)[0], 0]).astype(int)
        r = int(0.12 * (hi - lo).max())
        yy, xx = np.mgrid[:rgb.shape[0], :rgb.shape[1]]
        disk = (xx - cx) ** 2 + (yy - cy) ** 2 <= r ** 2
        rgb[disk] = (230, 20, 20)
        labels, occlusion, region, _ = sp.parse(rgb, face, net=RedIsSkin())
        x0, y0, x1, y1 = region
        assert labels.shape == (y1 - y0, x1 - x0) and not occlusion.any()
        got = np.zeros(rgb.shape[:2], bool)
        got[y0:y1, x0:x1] = labels == PART_NAMES.index("skin") + 1
        iou = (got & disk).sum() / (got | disk).sum()
        assert iou > 0.85, iou  # the crop is ~0.5 px a crop pixel here: the outline moves by about one pixel

    def test_region_is_the_padded_landmark_box(self, chris):
        img, face = chris
        x0, y0, x1, y1 = sp.output_region(face.landmarks, (img.rgb.shape[1], img.rgb.shape[0]))
        lo, hi = face.landmarks[:, :2].min(0), face.landmarks[:, :2].max(0)
        assert x0 <= lo[0] - 0.2 * (hi - lo)[0] and x1 >= hi[0] + 0.2 * (hi - lo)[0]
        assert all(isinstance(v, int) for v in (x0, y0, x1, y1))


def test_missing_weights_one_line(chris, monkeypatch, tmp_path):
    img, face = chris
    monkeypatch.setattr(sp, "WEIGHTS", tmp_path / "gone.pt")
    with pytest.raises(OwnParserWeightsMissingError) as err:
        segment_faces(img, [face], backend="parser", cache=False)
    assert "\n" not in str(err.value) and "gone.pt" in str(err.value) and "build_part_parser" in str(err.value)


@pytest.mark.parametrize("name", ["Chris.jpeg", "grace_hopper.jpg", "Luciano.png"])
def test_shipped_parser_finds_the_parts_on_photos(name):
    """The shipped weights on real photos (never trained on): every part found where the landmarks put it."""
    img = load_image(EXAMPLES / name)
    face = observe_image(img, cache=False).faces[0]
    parsed = segment_faces(img, [face], backend="parser", cache=False)[0]
    drawn = segment_faces(img, [face], backend="landmarks", cache=False)[0]
    assert parsed.source == sp.SOURCE and not parsed.weak
    right, left = sl.eye_centres(face)
    eye_distance = np.linalg.norm(left - right)
    shape = img.rgb.shape[:2]
    for part in PART_NAMES:
        got = parsed.full_mask(part, shape, visible=False)
        ref = drawn.full_mask(part, shape, visible=False)
        assert got.any(), part
        ys, xs = np.nonzero(got)
        ry, rx = np.nonzero(ref)
        offset = np.hypot(xs.mean() - rx.mean(), ys.mean() - ry.mean())
        assert offset < 0.2 * eye_distance, (part, offset / eye_distance)  # measured: at most 0.11
        iou = (got & ref).sum() / (got | ref).sum()
        if "brow" not in part and "lip" not in part:  # brows and lips: the model's outline, not MediaPipe's
            assert iou > 0.4, (part, iou)  # measured: 0.49-0.90
