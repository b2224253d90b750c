"""The FAN (face-alignment) path, run for real with randomly initialised weights written to a temporary
torch hub cache (the real weights cannot be downloaded here, and nothing may download in tests); plus
backends.available() and the torchvision shim."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fitter.io import LoadedImage, load_image
from fitter.observe import MissingWeightsError, backends, observe_image
from fitter.observe import fan_backend
from paths import EXAMPLES



@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A TORCH_HOME whose hub/checkpoints holds FAN and s3fd files with random weights."""
    import torch
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    home = tmp_path_factory.mktemp("torch_home")
    ckpt = home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), ckpt / fan_backend.FAN_WEIGHTS)
    torch.save(s3fd().state_dict(), home / "s3fd.pth")  # put in place by the tests that want it
    return home


@pytest.fixture
def torch_home(monkeypatch, tmp_path):
    def use(path: Path) -> Path:
        monkeypatch.setenv("TORCH_HOME", str(path))
        return path / "hub" / "checkpoints"

    yield use
    fan_backend.close_fan()


def test_missing_fan_weights_one_line_error(torch_home, tmp_path):
    ckpt = torch_home(tmp_path / "empty_home")
    with pytest.raises(MissingWeightsError) as err:
        observe_image(load_image(EXAMPLES / "Bryan.png"), detector="fan", cache=False)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(ckpt / fan_backend.FAN_WEIGHTS) in msg and "missing" in msg
    assert not ckpt.exists() or not any(ckpt.iterdir())  # nothing was downloaded or created


def test_missing_s3fd_when_forced(torch_home, random_weights, tmp_path):
    ckpt = torch_home(random_weights)
    with pytest.raises(MissingWeightsError) as err:
        observe_image(load_image(EXAMPLES / "Bryan.png"), detector="fan", boxes="s3fd", cache=False)
    assert str(ckpt / fan_backend.S3FD_WEIGHTS) in str(err.value) and "\n" not in str(err.value)


def test_fan_with_mediapipe_boxes(torch_home, random_weights, tmp_path):
    torch_home(random_weights)  # FAN present, s3fd absent: 'auto' boxes come from MediaPipe
    img = load_image(EXAMPLES / "Luciano.png")
    obs = observe_image(img, detector="fan", cache_dir=tmp_path / "cache", flip_input=False)
    assert obs.settings["backend"]["boxes"] == "mediapipe"
    assert len(obs.faces) == 1
    face = obs.faces[0]
    assert face.landmark_format == "ibug68" and face.detector == "fan+mediapipe"
    assert face.landmarks.shape == (68, 2) and face.landmarks.dtype == np.float32
    assert np.isfinite(face.landmarks).all()
    w = face.landmark_weights
    assert w.shape == (68,) and ((w >= 0) & (w <= 1)).all()
    assert len(face.blendshapes) == 52 and face.transform.shape == (4, 4)  # carried over from MediaPipe
    # random weights put points anywhere in FAN's crop: a square about twice the face, around it
    mp_face = observe_image(img, cache=False).faces[0]
    box = fan_backend._mediapipe_box(mp_face)
    c = (box[:2] + box[2:]) / 2
    half = 100 * ((box[2] - box[0]) + (box[3] - box[1])) / 195 + 2
    assert (np.abs(face.landmarks - c) <= half + 0.12 * (box[3] - box[1])).all()
    assert np.allclose(face.bbox, [*face.landmarks.min(0), *face.landmarks.max(0)])
    # cached like any observation
    again = observe_image(img, detector="fan", cache_dir=tmp_path / "cache", flip_input=False)
    assert np.array_equal(again.faces[0].landmarks, face.landmarks)


def test_fan_on_an_upside_down_image_reads_it_turned(torch_home, random_weights):
    """MediaPipe (the boxes) finds the image upside down: FAN runs on it turned back, and its points come back
    to the image's pixels, the same as on the upright image turned (the random network is deterministic)."""
    from fitter.observe import was_turned

    torch_home(random_weights)
    rgb = load_image(EXAMPLES / "Luciano.png").rgb
    h, w = rgb.shape[:2]
    upright = observe_image(LoadedImage.from_array(rgb), detector="fan", cache=False, flip_input=False)
    down = observe_image(LoadedImage.from_array(np.ascontiguousarray(rgb[::-1, ::-1])), detector="fan", cache=False,
                         flip_input=False)
    assert was_turned(down.warnings) and len(down.faces) == 1
    np.testing.assert_allclose(down.faces[0].landmarks, [w, h] - upright.faces[0].landmarks, atol=1e-3)
    assert down.faces[0].detector == "fan+mediapipe"


def test_fan_with_s3fd_boxes(torch_home, random_weights):
    ckpt = torch_home(random_weights)
    (ckpt / fan_backend.S3FD_WEIGHTS).symlink_to(random_weights / "s3fd.pth")
    try:
        assert backends.available(import_packages=False)["fan"]["boxes"] == "s3fd"
        small = LoadedImage.from_array(load_image(EXAMPLES / "Bryan.png").rgb)
        obs = observe_image(small, detector="fan", cache=False, flip_input=False, max_faces=1)
        assert obs.settings["backend"]["boxes"] == "s3fd"
        # random s3fd weights "detect" many random boxes (seeded); the most confident one runs through FAN
        assert len(obs.faces) == 1
        for face in obs.faces:
            assert face.detector == "fan+s3fd" and face.landmarks.shape == (68, 2)
            assert np.isfinite(face.landmarks).all() and face.blendshapes is None
    finally:
        (ckpt / fan_backend.S3FD_WEIGHTS).unlink()


def test_available_reports_weights(torch_home, random_weights, tmp_path):
    torch_home(tmp_path / "nothing")
    rep = backends.available(import_packages=False)
    assert set(rep) == {"mediapipe", "fan", "facer", "pytorch3d", "cuda"}
    assert rep["mediapipe"]["available"] and rep["mediapipe"]["bundle"].endswith("face_landmarker.task")
    assert not rep["fan"]["available"] and fan_backend.FAN_WEIGHTS in rep["fan"]["detail"]
    assert not rep["fan"]["weights"][fan_backend.FAN_WEIGHTS]["present"]
    assert not rep["facer"]["available"]
    if rep["facer"]["detail"].startswith("no face-parser"):  # facer installed: the weights are what is missing
        assert str(tmp_path / "nothing") in rep["facer"]["detail"]
    assert isinstance(rep["cuda"]["available"], bool)
    torch_home(random_weights)
    rep = backends.available(import_packages=False)
    assert rep["fan"]["available"] and rep["fan"]["boxes"] == "mediapipe"
    assert rep["fan"]["detail"] == "68 iBUG landmarks; boxes from MediaPipe (no s3fd weights)"


def test_available_names_a_missing_package_before_missing_weights(monkeypatch, torch_home, tmp_path):
    torch_home(tmp_path / "nothing")
    find_spec = backends.importlib.util.find_spec
    monkeypatch.setattr(backends.importlib.util, "find_spec",
                        lambda name, *args: None if name in ("face_alignment", "facer") else find_spec(name, *args))
    rep = backends.available(import_packages=False)
    assert rep["fan"]["detail"] == ("face-alignment is not importable (face_alignment is not installed); "
                                    "pip install face-alignment")
    assert rep["facer"]["detail"] == ("facer is not importable (facer is not installed); pip install pyfacer with "
                                      "torchvision pinned to torch")


def test_torchvision_shim_makes_torchvision_importable():
    code = (
        "from fitter.observe.torchvision_shim import ensure_importable\n"
        "state = ensure_importable()\n"
        "assert ensure_importable() == state\n"
        "import torchvision\n"
        "print(state)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("native", "shimmed")
