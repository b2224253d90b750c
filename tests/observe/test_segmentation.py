"""Facial part segmentation (fitter.observe.segmentation): the landmark fallback on real photos, facer's real
warp/parse/unwarp path with TorchScript stand-ins for the FaRL nets, the cache, and the coordinate rules."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np
import pytest
import torch

from fitter.io import LoadedImage, load_image
from fitter.observe import FaceObservation, MissingWeightsError, observe_image
from fitter.observe import seg_landmarks as sl
from fitter.observe import seg_parser
from fitter.observe.segmentation import (
    PART_NAMES,
    ParserLoadError,
    ParserWeightsMissingError,
    PartMasks,
    default_cache_dir,
    parser_weights_path,
    segment_faces,
)
from paths import EXAMPLES

PHOTOS = ["grace_hopper.jpg", "Chris.jpeg", "astronaut.png", "Luciano.png", "Bryan.png"]
CHIN = 152  # MediaPipe mesh index of the chin

LAPA = ["background", "face", "rb", "lb", "re", "le", "nose", "ulip", "imouth", "llip", "hair"]
CELEBM = ["background", "neck", "face", "cloth", "rr", "lr", "rb", "lb", "re", "le", "nose", "imouth", "llip",
          "ulip", "hair", "eyeg", "hat", "earr", "neck_l"]

# iBUG 68 points picked from the MediaPipe mesh (to exercise the 68-point fallback on a real face)
MP_TO_IBUG68 = (
    [127, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 356]  # jaw 0-16
    + [70, 63, 105, 66, 107] + [336, 296, 334, 293, 300]  # brows (upper edge) 17-21, 22-26
    + [168, 197, 5, 4] + [98, 97, 2, 326, 327]  # nose bridge 27-30, base 31-35
    + [33, 160, 158, 133, 153, 144] + [362, 385, 387, 263, 373, 380]  # eyes 36-41, 42-47
    + [61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91]  # outer lips 48-59
    + [78, 81, 13, 311, 308, 402, 14, 178]  # inner lips 60-67
)


@pytest.fixture(scope="module")
def photos():
    """(image, first face) of each example photo, observed once with the real MediaPipe landmarker."""
    out = {}
    for name in PHOTOS:
        img = load_image(EXAMPLES / name)
        obs = observe_image(img, cache=False)
        assert len(obs.faces) == 1
        out[name] = (img, obs.faces[0])
    return out


@pytest.fixture(autouse=True)
def _no_hub(tmp_path, monkeypatch):
    """An empty torch hub (no parser weights) and cache, whatever the machine has."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("FACEFIT_CACHE", str(tmp_path / "facefit_cache"))


def centroid(pm: PartMasks, part: str) -> np.ndarray:
    pts = pm.points(part, visible=False)
    assert len(pts), part
    return pts.mean(0)


# -- TorchScript stand-ins for the FaRL parsing nets ----------------------------------------------------
class StandIn(torch.nn.Module):
    """Returns fixed logits over facer's 448x448 warped face, whatever the input (like FaRL: (logits, None))."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        return self.logits.unsqueeze(0).expand(x.shape[0], -1, -1, -1).contiguous(), None


def save_standin(path: Path, names: list[str], paint) -> Path:
    s = 448
    yy, xx = torch.meshgrid(torch.arange(s) + 0.5, torch.arange(s) + 0.5, indexing="ij")
    lab = torch.zeros(s, s, dtype=torch.long)

    def disc(c, r, name):
        lab[(xx - float(c[0])) ** 2 + (yy - float(c[1])) ** 2 < r * r] = names.index(name)

    def rows(y0, y1, name):
        lab[y0:y1] = names.index(name)

    lab[((xx - 224) / 150) ** 2 + ((yy - 240) / 190) ** 2 < 1] = names.index("face")
    paint(disc, rows)
    logits = torch.nn.functional.one_hot(lab, len(names)).permute(2, 0, 1).float() * 10.0
    torch.jit.save(torch.jit.script(StandIn(logits)), str(path))
    return path


def lapa_template_eyes() -> np.ndarray:
    """Where facer's lapa/448 alignment puts the (image-left, image-right) eye keypoints in its warped input."""
    from fitter.observe.seg_facer import import_facer

    import_facer()
    from facer.transform import _standard_face_pts, tanh_warp_transform

    tpl = (_standard_face_pts() + 1) * (448 - 1) / 2.0
    return tanh_warp_transform(tpl[None], torch.eye(3)[None], 0.8, (448, 448))[0, :2].numpy()


@pytest.fixture(scope="module")
def lapa_standin(tmp_path_factory):
    """Nose at the centre of the parser's input, the eyes at facer's template eyes (image-left one labelled
    're', the subject's right), hair along the top."""
    eyes = lapa_template_eyes()

    def paint(disc, rows):
        disc(eyes[0], 14, "re")
        disc(eyes[1], 14, "le")
        disc((224, 224), 12, "nose")
        rows(0, 100, "hair")

    return save_standin(tmp_path_factory.mktemp("w") / "lapa_standin.pt", LAPA, paint)


# -- the landmark fallback -------------------------------------------------------------------------------
def test_mediapipe_left_lists_are_the_subjects_left(photos):
    """MediaPipe's LEFT_EYE / LEFT_EYEBROW contours lie on the image's right on every frontal photo."""
    topo = sl.mediapipe_topology()
    for name, (_, face) in photos.items():
        p = face.landmarks
        assert p[topo["left_eye"], 0].mean() > p[topo["right_eye"], 0].mean(), name
        lb = np.concatenate([p[c] for c in topo["left_brow"]])
        rb = np.concatenate([p[c] for c in topo["right_brow"]])
        assert lb[:, 0].mean() > rb[:, 0].mean(), name


@pytest.mark.parametrize("name", PHOTOS)
def test_fallback_parts_on_photo(photos, name):
    img, face = photos[name]
    (pm,) = segment_faces(img, [face], backend="landmarks", cache=False)
    assert pm.source == "landmarks" and pm.weak and not pm.occlusion.any() and pm.warnings == []
    x0, y0, x1, y1 = pm.region
    assert 0 <= x0 < x1 <= img.width and 0 <= y0 < y1 <= img.height
    masks = {part: pm.mask(part) for part in PART_NAMES}
    for part, m in masks.items():
        assert m.any(), part
    total = sum(m.astype(int) for m in masks.values())
    assert total.max() == 1  # disjoint
    c = {part: centroid(pm, part) for part in PART_NAMES}
    # subject's left on the image's right
    assert c["left_eye"][0] > c["nose"][0] > c["right_eye"][0]
    assert c["left_brow"][0] > c["right_brow"][0]
    # vertical order of an upright face: brows, eyes, nose, upper lip, lower lip, chin
    chin_y = face.landmarks[CHIN, 1]
    assert c["left_brow"][1] < c["left_eye"][1] < c["nose"][1] < c["upper_lip"][1] < c["lower_lip"][1] < chin_y
    assert c["right_brow"][1] < c["right_eye"][1]
    # skin is the largest part and surrounds the others
    assert masks["skin"].sum() > 5 * max(masks[p].sum() for p in PART_NAMES[:-1])
    skin = pm.points("skin")
    assert skin[:, 0].min() < c["right_eye"][0] and skin[:, 0].max() > c["left_eye"][0]
    assert skin[:, 1].min() < c["left_brow"][1] and skin[:, 1].max() > c["lower_lip"][1]


def test_fallback_pixels_follow_the_polygons(photos):
    """points() are pixel centres in full-image coordinates: they lie inside the part's landmark polygon,
    and their count matches the polygon's area."""
    img, face = photos["Chris.jpeg"]
    (pm,) = segment_faces(img, [face], backend="landmarks", cache=False)
    polys = sl.part_polygons(face)
    for part in ("left_eye", "right_eye", "upper_lip", "lower_lip"):
        poly = polys[part].astype(np.float32)
        pts = pm.points(part)
        inside = [cv2.pointPolygonTest(poly, (float(x), float(y)), True) for x, y in pts]
        assert min(inside) >= -1e-3, part  # every centre inside
        area = cv2.contourArea(poly)
        assert abs(len(pts) - area) < 0.05 * area + 0.3 * cv2.arcLength(poly, True), part


def test_skin_below_brows_and_forehead(photos):
    img, face = photos["grace_hopper.jpg"]
    (pm,) = segment_faces(img, [face], backend="landmarks", cache=False)
    px, py, nx, ny = pm.brow_line
    assert abs(nx) < 0.2 and ny > 0.95  # upright face: the normal points down
    all_skin = pm.points("skin")
    low = pm.points("skin", below_brows=True)
    assert 0 < len(low) < len(all_skin)
    assert ((low[:, 0] - px) * nx + (low[:, 1] - py) * ny >= 0).all()
    above = len(all_skin) - len(low)
    assert above > 0.1 * len(all_skin)  # MediaPipe's oval includes the forehead
    # the line runs along the brows: below the top of the brows, above the eyes
    brows = np.concatenate([pm.points("left_brow"), pm.points("right_brow")])
    eyes = np.concatenate([pm.points("left_eye"), pm.points("right_eye")])
    assert brows[:, 1].min() < py < eyes[:, 1].min()
    assert (pm.skin_mask() == pm.mask("skin") & pm.below_brows_mask()).all()


def test_ibug68_fallback(photos):
    img, face = photos["Chris.jpeg"]
    ib = FaceObservation(landmarks=face.landmarks[MP_TO_IBUG68], landmark_format="ibug68", bbox=face.bbox,
                         detector="fan")
    (pm,) = segment_faces(img, [ib], backend="landmarks", cache=False)
    assert pm.source == "landmarks" and pm.weak and pm.info["landmarks"] == "ibug68"
    c = {part: centroid(pm, part) for part in PART_NAMES}
    assert c["left_eye"][0] > c["right_eye"][0] and c["left_brow"][0] > c["right_brow"][0]
    assert c["left_brow"][1] < c["left_eye"][1] < c["nose"][1] < c["upper_lip"][1] < c["lower_lip"][1]
    # no forehead in the 68-point scheme: (almost) all skin is already below the brow line
    skin = pm.points("skin")
    assert len(pm.points("skin", below_brows=True)) > 0.97 * len(skin)
    # and it agrees with the MediaPipe masks of the same face on where the parts are
    (mp,) = segment_faces(img, [face], backend="landmarks", cache=False)
    iod = np.linalg.norm(np.subtract(*sl.eye_centres(face)))
    for part in PART_NAMES[:-1]:
        assert np.linalg.norm(c[part] - centroid(mp, part)) < 0.2 * iod, part


def test_points_map_a_known_region_back():
    labels = np.zeros((4, 5), np.uint8)
    labels[1, 2] = PART_NAMES.index("nose") + 1
    labels[3, 0] = PART_NAMES.index("skin") + 1
    occ = np.zeros_like(labels, bool)
    pm = PartMasks(labels, occ, (10, 20, 15, 24), "landmarks", True)
    assert pm.points("nose").tolist() == [[12.5, 21.5]]
    assert pm.points("skin").tolist() == [[10.5, 23.5]]
    assert pm.points("left_eye").shape == (0, 2) and pm.points("left_eye").dtype == np.float32
    full = pm.full_mask("nose", (30, 40))
    assert full.sum() == 1 and full[21, 12]
    hidden = occ.copy()
    hidden[3, 0] = True
    assert len(PartMasks(labels, hidden, (10, 20, 15, 24), "landmarks", True).points("skin")) == 0
    # a brow line at y = 22.5 pointing down keeps rows whose centres are at y >= 22.5
    pm.brow_line = np.array([0, 22.5, 0, 1], np.float32)
    assert pm.points("skin", below_brows=True).tolist() == [[10.5, 23.5]]
    assert len(pm.points("nose", below_brows=True)) == 0
    with pytest.raises(ValueError, match="unknown part"):
        pm.mask("ears")
    with pytest.raises(ValueError, match="do not match"):
        PartMasks(labels, occ, (0, 0, 4, 4), "landmarks", True)


def test_save_load_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 9, (37, 53)).astype(np.uint8)
    occ = rng.random((37, 53)) > 0.7
    pm = PartMasks(labels, occ, (3, 4, 56, 41), "facer:farl/lapa/448", False, np.array([1, 2, 0, 1]),
                   ["a warning"], {"keypoints": "landmarks"})
    pm.save(tmp_path / "m.npz")
    back = PartMasks.load(tmp_path / "m.npz")
    assert (back.labels == labels).all() and (back.occlusion == occ).all()
    assert back.region == (3, 4, 56, 41) and back.source == pm.source and back.weak is False
    assert back.brow_line.tolist() == [1, 2, 0, 1] and back.warnings == ["a warning"]
    assert back.info == {"keypoints": "landmarks"}
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary left behind


# -- facer, with stand-in nets ---------------------------------------------------------------------------
def test_facer_lapa_standin_real_warp_path(photos, lapa_standin):
    img, face = photos["grace_hopper.jpg"]
    (pm,) = segment_faces(img, [face], backend="facer", parser_weights=lapa_standin, cache=False)
    assert pm.source == "facer:farl/lapa/448" and not pm.weak and pm.warnings == []
    assert pm.info["keypoints"] == "landmarks"
    re, le = sl.eye_centres(face)  # the iris centres: facer's eye keypoints
    iod = float(np.linalg.norm(le - re))
    # the template's image-right eye ('le') lands on the subject's left iris, after facer's unwarp
    assert np.linalg.norm(centroid(pm, "left_eye") - le) < 0.1 * iod
    assert np.linalg.norm(centroid(pm, "right_eye") - re) < 0.1 * iod
    # the centre of the parser's input is on the nose bridge: between the eyes and the nose tip
    nose = centroid(pm, "nose")
    tip = sl.nose_tip(face)
    assert re[0] < nose[0] < le[0]
    assert max(re[1], le[1]) < nose[1] < tip[1]
    # 'face' became skin around them; hair (the top rows) is occlusion above the brows, never skin
    assert pm.mask("skin").sum() > 20 * pm.mask("nose").sum()
    occ = np.argwhere(pm.occlusion)
    assert len(occ) > 0
    px, py, nx, ny = pm.brow_line
    ys, xs = occ[:, 0] + pm.region[1] + 0.5, occ[:, 1] + pm.region[0] + 0.5
    assert ((xs - px) * nx + (ys - py) * ny < 0).all()
    # skin pixels next to the hair, where hair is likely but not the first choice, are occluded too
    skin_occluded = (pm.mask("skin") & pm.occlusion).sum()
    assert 0 < skin_occluded < 0.05 * pm.mask("skin").sum()
    assert len(pm.points("skin")) == pm.mask("skin").sum() - skin_occluded
    for part in ("left_brow", "right_brow", "upper_lip", "lower_lip"):
        assert not pm.mask(part).any()  # the stand-in never predicts them
    # the masks cover a crop around the face, not the whole image
    x0, y0, x1, y1 = pm.region
    assert (x1 - x0) * (y1 - y0) < 0.5 * img.width * img.height
    assert x0 <= face.bbox[0] and y0 <= face.bbox[1] and x1 >= face.bbox[2] and y1 >= face.bbox[3]


def test_facer_celebm_standin(photos, tmp_path):
    def paint(disc, rows):
        disc((224, 224), 20, "nose")
        disc((168, 213), 22, "re")
        disc((280, 213), 22, "le")
        disc((224, 330), 16, "ulip")
        rows(0, 120, "hat")

    weights = save_standin(tmp_path / "celebm_standin.pt", CELEBM, paint)
    img, face = photos["Chris.jpeg"]
    (pm,) = segment_faces(img, [face], backend="facer", parser="farl/celebm/448", parser_weights=weights,
                          cache=False)
    assert pm.source == "facer:farl/celebm/448" and not pm.weak and pm.warnings == []
    re, le = sl.eye_centres(face)
    iod = float(np.linalg.norm(le - re))
    assert np.linalg.norm(centroid(pm, "left_eye") - le) < 0.3 * iod
    assert np.linalg.norm(centroid(pm, "right_eye") - re) < 0.3 * iod
    # facer's celebm crop is centred a tenth of the way from the eyes to the mouth
    rm, lm = sl.mouth_corners(face)
    centre = (re + le) / 2 + 0.1 * ((rm + lm) / 2 - (re + le) / 2)
    assert np.linalg.norm(centroid(pm, "nose") - centre) < 0.1 * iod
    assert centroid(pm, "upper_lip")[1] > centroid(pm, "nose")[1]
    occ = np.argwhere(pm.occlusion)
    assert len(occ) > 0 and (occ[:, 0] + pm.region[1] < pm.brow_line[1]).all()  # the hat, above the brows


def test_facer_sides_checked_against_landmarks(photos, tmp_path):
    """A parser whose left/right are the other way round is corrected, with a warning."""
    eyes = lapa_template_eyes()

    def paint(disc, rows):
        disc(eyes[0], 14, "le")
        disc(eyes[1], 14, "re")

    weights = save_standin(tmp_path / "swapped.pt", LAPA, paint)
    img, face = photos["grace_hopper.jpg"]
    (pm,) = segment_faces(img, [face], backend="facer", parser_weights=weights, cache=False)
    assert any("swapped" in w for w in pm.warnings)
    assert centroid(pm, "left_eye")[0] > centroid(pm, "right_eye")[0]


def test_facer_with_retinaface_weights(photos, lapa_standin, tmp_path):
    """facer's RetinaFace runs on the context crop; built with random weights it finds nothing, and the
    landmark keypoints are used (said in the warnings)."""
    from fitter.observe.seg_facer import import_facer

    import_facer()
    from facer.face_detection.retinaface import RetinaFace, cfg_mnet

    path = tmp_path / "mobilenet0.25_Final.pth"
    torch.save(RetinaFace(cfg=cfg_mnet, phase="test").state_dict(), path)
    img, face = photos["grace_hopper.jpg"]
    (pm,) = segment_faces(img, [face], backend="facer", parser_weights=lapa_standin, detector_weights=path,
                          cache=False)
    assert pm.info["keypoints"] == "landmarks" and any("RetinaFace" in w for w in pm.warnings)
    assert pm.mask("left_eye").any()
    with pytest.raises(MissingWeightsError, match="RetinaFace"):
        segment_faces(img, [face], backend="facer", parser_weights=lapa_standin,
                      detector_weights=tmp_path / "nope.pth", cache=False)


def test_missing_weights_one_clear_message(photos):
    img, face = photos["Bryan.png"]
    expected = parser_weights_path("farl/lapa/448")
    assert str(expected).startswith(os.environ["TORCH_HOME"])
    with pytest.raises(ParserWeightsMissingError) as err:
        segment_faces(img, [face], backend="facer", cache=False)
    msg = str(err.value)
    assert "\n" not in msg and str(expected) in msg and "face_parsing.farl.lapa" in msg
    assert "--parser-weights" in msg and "landmarks" in msg and "TORCH_HOME" in msg
    assert isinstance(err.value, MissingWeightsError)
    with pytest.raises(ParserWeightsMissingError, match="nowhere.pt"):
        segment_faces(img, [face], backend="facer", parser_weights="/nowhere.pt", cache=False)


def test_auto_falls_back_then_uses_facer(photos, lapa_standin, monkeypatch, tmp_path):
    img, face = photos["Luciano.png"]
    (pm,) = segment_faces(img, [face], backend="auto", cache=False)
    assert pm.source == seg_parser.SOURCE and not pm.weak  # our own parser before the landmark polygons
    assert len(pm.warnings) == 1 and "own parser" in pm.warnings[0] and "--parser-weights" in pm.warnings[0]
    with monkeypatch.context() as m:  # without its weights either, the landmarks
        m.setattr(seg_parser, "WEIGHTS", tmp_path / "gone.npz")
        (pm,) = segment_faces(img, [face], backend="auto", cache=False)
    assert pm.source == "landmarks" and pm.weak
    assert len(pm.warnings) == 1 and "landmarks (weaker)" in pm.warnings[0] and "--parser-weights" in pm.warnings[0]
    # with the file where facer expects it, auto picks the parser
    hub = parser_weights_path("farl/lapa/448")
    hub.parent.mkdir(parents=True)
    hub.write_bytes(lapa_standin.read_bytes())
    (pm,) = segment_faces(img, [face], backend="auto", cache=False)
    assert pm.source == "facer:farl/lapa/448" and not pm.weak and pm.warnings == []


def test_corrupt_weights(photos, tmp_path):
    img, face = photos["Bryan.png"]
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"this is not TorchScript")
    with pytest.raises(ParserLoadError, match="broken.pt") as err:
        segment_faces(img, [face], backend="facer", parser_weights=bad, cache=False)
    assert "\n" not in str(err.value)
    (pm,) = segment_faces(img, [face], backend="auto", parser_weights=bad, cache=False)
    assert pm.source == seg_parser.SOURCE and "broken.pt" in pm.warnings[0]  # auto: our own parser instead


# -- cache -----------------------------------------------------------------------------------------------
def entries(root: Path) -> list[Path]:
    return sorted(root.rglob("*.npz")) if root.exists() else []


def test_cache_hit_miss(photos, lapa_standin, tmp_path, monkeypatch):
    img, face = photos["grace_hopper.jpg"]
    root = default_cache_dir()
    assert root == Path(os.environ["FACEFIT_CACHE"]) / "masks"
    weights = tmp_path / "parser.pt"
    weights.write_bytes(lapa_standin.read_bytes())

    first = segment_faces(img, [face], backend="facer", parser_weights=weights)
    assert len(entries(root)) == 1
    from fitter.observe import seg_facer

    with monkeypatch.context() as m:  # a hit never parses
        m.setattr(seg_facer, "parse_faces", lambda *a, **k: pytest.fail("parsed despite a cache hit"))
        again = segment_faces(img, [face], backend="facer", parser_weights=weights)
    assert len(entries(root)) == 1
    assert (again[0].labels == first[0].labels).all() and (again[0].occlusion == first[0].occlusion).all()
    assert again[0].region == first[0].region and again[0].info == first[0].info
    assert np.allclose(again[0].brow_line, first[0].brow_line) and again[0].source == first[0].source

    # the same pixels under another name hit; other weights, another face or another backend miss
    moved = LoadedImage.from_array(img.rgb)
    moved.content_hash = img.content_hash
    segment_faces(moved, [face], backend="facer", parser_weights=weights)
    assert len(entries(root)) == 1
    os.utime(weights, ns=(1, 1))
    segment_faces(img, [face], backend="facer", parser_weights=weights)
    assert len(entries(root)) == 2
    shifted = FaceObservation(landmarks=face.landmarks + 1, landmark_format=face.landmark_format,
                              bbox=face.bbox + 1)
    segment_faces(img, [face, shifted], backend="facer", parser_weights=weights)
    assert len(entries(root)) == 3
    segment_faces(img, [face], backend="landmarks")
    assert len(entries(root)) == 4
    # cache=False neither reads nor writes; an explicit cache_dir is used as given
    segment_faces(img, [face], backend="landmarks", cache=False)
    assert len(entries(root)) == 4
    segment_faces(img, [face], backend="landmarks", cache_dir=tmp_path / "elsewhere")
    assert len(entries(tmp_path / "elsewhere")) == 1

    # a corrupt entry is dropped and recomputed
    (path,) = entries(tmp_path / "elsewhere")
    path.write_bytes(b"not an npz")
    (pm,) = segment_faces(img, [face], backend="landmarks", cache_dir=tmp_path / "elsewhere")
    assert pm.mask("nose").any() and PartMasks.load(path).mask("nose").any()


def test_arguments_checked(photos):
    img, face = photos["Bryan.png"]
    with pytest.raises(ValueError, match="backend"):
        segment_faces(img, [face], backend="magic")
    with pytest.raises(ValueError, match="parser"):
        segment_faces(img, [face], parser="farl/helen/512")
    assert segment_faces(img, [], backend="facer") == []
