"""`facefit fit clip.mp4` and `facefit fit --subject DIR` end to end: real frames (a rendered synthetic clip
written as an mp4), the real detector, short stages; one folder and one summary line per subject, resume, a
shot cut splitting a clip, and one-line refusals of bad option combinations."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from fitter.app.subject import missing_faces, other_people, turned_images, view_misfit
from fitter.evidence import Evidence, FrameEvidence
from fitter.io import ImageError, Rig, RigCamera, load_image, save_rig
from fitter.io.rig import check_image_size
from fitter.observe.types import FaceObservation
from fitter.app.toml_text import toml_text
from fitter.common.files import write_image
from fitter.export.video_overlay import write_video
from fitter.synth.clips import render_clip, sample_clip
from sequences import tiny_preset

FPS = 10.0
FRAMES = 4
CUT_TO_SEED = 6  # cut.mp4: two frames of talk.mp4's person, then two of this seed's (colour change 0.65)


@pytest.fixture(scope="module")
def inputs(ict, tmp_path_factory):
    d = tmp_path_factory.mktemp("clip")
    clip = sample_clip(ict, seed=1, fps=FPS, duration=FRAMES / FPS, size=256)
    frames = [r.image for r in render_clip(ict, clip, supersample=1)]
    write_video(d / "talk.mp4", frames, FPS)
    other = sample_clip(ict, seed=CUT_TO_SEED, fps=FPS, duration=2 / FPS, size=256)
    other_frames = [r.image for r in render_clip(ict, other, supersample=1)]
    write_video(d / "cut.mp4", frames[:2] + other_frames, FPS)
    write_image(d / "other_person.png", other_frames[0])
    photos = d / "person"
    for k in (0, 3):
        write_image(photos / f"photo{k}.png", frames[k])
    preset = tiny_preset(iterations=5)
    config = d / "tiny.toml"
    config.write_text(toml_text({key: preset[key] for key in ("stages", "track_stages", "window_stages",
                                                               "polish_stages", "video")}))
    # two-frame shots are compared, and any difference is flagged (the tiny stages barely move the identity)
    video = dict(preset["video"], shot_frames_min=2, shot_identity_mm=0.001)
    (d / "cut.toml").write_text(toml_text({key: preset[key] for key in ("stages", "track_stages", "window_stages",
                                                                         "polish_stages")} | {"video": video}))
    return d, config


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_clip_is_one_subject_and_resumes(inputs, tmp_path):
    d, config = inputs
    out = tmp_path / "out"
    args = ("fit", d / "talk.mp4", "-o", out, "--preset", "fast", "--config", config, "--cache-dir", tmp_path / "c",
            "--every", 2)
    result = run(*args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fitted"] == 1 and summary["failed"] == [] and summary["faces"][0]["folder"] == "talk"
    folder = out / "talk"
    for name in ("params.npz", "mesh.obj", "anim.usdc", "overlay.mp4", "report.json"):
        assert (folder / name).exists(), name
    params = np.load(folder / "params.npz")
    assert params["frame_index"].tolist() == [0, 2] and params["expression"].shape[0] == 2  # --every 2
    report = json.loads((folder / "report.json").read_text())
    assert report["kind"] == "video" and report["subject_options"]["every"] == 2 and report["resume_key"]
    assert not list(out.glob(".facefit-frames-*"))  # the frames kept on disk while fitting are gone
    again = run(*args)
    assert again.exit_code == 0 and json.loads((out / "summary.json").read_text())["skipped"] == 1


def test_shot_cut_splits_the_clip_and_is_reported(inputs, tmp_path):
    d, config = inputs
    out = tmp_path / "out"
    result = run("fit", d / "cut.mp4", "-o", out, "--preset", "fast", "--config", d / "cut.toml",
                 "--cache-dir", tmp_path / "c")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "cut" / "report.json").read_text())
    assert report["sequence"]["segments"] == 2
    assert [f["segment"] for f in report["frames"]] == [0, 0, 1, 1]
    warnings = report["warnings"]
    assert any(w.startswith("1 shot cut (before frame 2): the 2 shots") for w in warnings), warnings
    first, second = report["sequence"]["shots"]
    assert (first["frames"], second["frames"]) == ("0-1", "2-3") and first["identity_distance_mm"] < 1e-3
    assert any(w.startswith("frames 2-3 may show another person than frames 0-1: their faces differ by")
               for w in warnings), warnings
    assert "shots" in report["timings_s"]


def test_photos_of_one_person(inputs, tmp_path):
    d, config = inputs
    out = tmp_path / "out"
    result = run("fit", "--subject", d / "person", "-o", out, "--preset", "fast", "--config", config,
                 "--cache-dir", tmp_path / "c")
    assert result.exit_code == 0, result.output
    params = np.load(out / "person" / "params.npz")
    assert params["expression"].shape[0] == 2 and params["K"].shape == (2, 3, 3)  # one camera per photo
    assert params["view_names"].tolist() == ["photo0.png", "photo3.png"]


def test_photos_without_a_face_are_named(inputs, tmp_path):
    d, config = inputs
    folder = tmp_path / "person"
    for k in (0, 3):
        (folder / f"photo{k}.png").parent.mkdir(exist_ok=True)
        (folder / f"photo{k}.png").write_bytes((d / "person" / f"photo{k}.png").read_bytes())
    write_image(folder / "wall.png", np.full((256, 256, 3), 128, np.uint8))
    (folder / "cut_short.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))  # unreadable: left out, not fatal
    out = tmp_path / "out"
    result = run("fit", "--subject", folder, "-o", out, "--preset", "fast", "--config", config,
                 "--cache-dir", tmp_path / "c")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "person" / "report.json").read_text())
    assert any("1 of 3 images have no detected face (wall.png)" in w for w in report["warnings"]), report["warnings"]
    assert any(w.startswith("left out, cannot be read: ") and "cut_short.jpg: JPEG data is truncated" in w
               for w in report["warnings"]), report["warnings"]
    assert "person: 1 of 3 images have no detected face (wall.png)" in result.output  # on the terminal too


def test_a_photo_of_another_person_is_named(inputs, tmp_path):
    """Each photo's own identity (landmark stages) against the others' mean: with these short stages one person's
    two photos lie 0.09 mm from each other, the other person's photo 0.16 mm from them."""
    d, _ = inputs
    folder = tmp_path / "person"
    for name in ("photo0.png", "photo3.png"):
        write_image(folder / name, load_image(d / "person" / name).rgb)
    write_image(folder / "stranger.png", load_image(d / "other_person.png").rgb)
    preset = tiny_preset(iterations=20)
    config = tmp_path / "check.toml"
    config.write_text(toml_text({key: preset[key] for key in ("stages", "track_stages", "window_stages",
                                                               "polish_stages")}
                                | {"video": dict(preset["video"], photo_identity_mm=0.12)}))
    out = tmp_path / "out"
    result = run("fit", "--subject", folder, "-o", out, "--preset", "fast", "--config", config,
                 "--cache-dir", tmp_path / "c")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "person" / "report.json").read_text())
    far = [r for r in report["sequence"]["photos"] if r["identity_distance_mm"] > 0.12]
    assert [r["image"] for r in far] == [2], report["sequence"]["photos"]
    assert "person: stranger.png may show another person than the other photos: its face differs" in result.output


def test_other_people_warning():
    rows = [{"image": 0, "identity_distance_mm": 0.3}, {"image": 1, "identity_distance_mm": 1.2},
            {"image": 2, "identity_distance_mm": 0.5}]
    (line,) = other_people(rows, ["a.jpg", "b.jpg", "c.jpg"], 0.8)
    assert line.startswith("b.jpg may show another person than the other photos: its face differs from theirs by "
                           "1.20 mm (one person's photos differ by less than 0.8 mm")
    assert other_people(rows, ["a.jpg", "b.jpg", "c.jpg"], 1.5) == []
    (two,) = other_people([dict(r, identity_distance_mm=1.0) for r in rows[:2]], ["a.jpg", "b.jpg"], 0.8)
    assert two.startswith("a.jpg and b.jpg may show two people: their faces differ by 1.00 mm")


def test_upside_down_photos_are_fitted_turned_and_named(inputs, tmp_path):
    """MediaPipe lays its landmarks out upright on an upside-down face; the detector finds such a photo turned
    back, and the subject says which photos were."""
    d, config = inputs
    folder = tmp_path / "person"
    write_image(folder / "photo0.png", load_image(d / "person" / "photo0.png").rgb)
    turned = load_image(d / "person" / "photo3.png").rgb[::-1, ::-1]
    write_image(folder / "photo3_down.png", np.ascontiguousarray(turned))
    out = tmp_path / "out"
    result = run("fit", "--subject", folder, "-o", out, "--preset", "fast", "--config", config,
                 "--cache-dir", tmp_path / "c")
    assert result.exit_code == 0, result.output
    assert "person: 1 of 2 photos are upside down (photo3_down.png)" in result.output
    params = np.load(out / "person" / "params.npz")
    up, down = params["R"]  # the second photo's head is seen turned half a turn about the camera's axis
    assert np.degrees(np.arccos(np.clip((np.trace(down @ up.T) - 1) / 2, -1, 1))) > 150


def test_turned_images_are_named_by_the_way_they_lie():
    lines = turned_images([0, 2, 1, 0, 3, 2], [f"p{k}.jpg" for k in range(6)], "photos")
    assert lines[0].startswith("2 of 6 photos are upside down (p1.jpg, p5.jpg): their faces were found in them "
                               "turned 180 degrees")
    assert lines[1].startswith("2 of 6 photos are on their side (p2.jpg, p4.jpg): their faces were found in them "
                               "turned 90 degrees")
    assert turned_images([0, 0], ["a", "b"], "frames") == []


def test_missing_frames_are_listed_as_spans():
    records = [{"face": None if k in (0, 1, 2, 5, 8) else object(), "index": 10 + 2 * k} for k in range(10)]
    (line,) = missing_faces(records)
    assert line.startswith("5 of 10 frames have no detected face (frames 10-14, 20, 26)")
    assert missing_faces([{"face": object(), "index": 0}]) == []


@pytest.mark.parametrize("args, message", [
    (["-o", "OUT"], "nothing to fit"),
    (["--subject", ".", "--subject", ".", "--rig", "none", "-o", "OUT"], "exactly one --subject"),
    (["x.mp4", "--start", "2", "--end", "1", "-o", "OUT"], "must be after --start"),
    (["x.mp4", "--fps", "nan", "-o", "OUT"], "nan is not a finite number"),
    (["x.mp4", "--fps", "inf", "-o", "OUT"], "inf is not a finite number"),
])
def test_refusals(tmp_path, args, message):
    result = CliRunner().invoke(main, ["fit", *[str(tmp_path / a) if a == "OUT" else a for a in args]])
    assert result.exit_code == 2 and message in result.output


def test_unusable_subjects_are_refused_before_any_image_is_read(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "capture" / "cam0").mkdir(parents=True)
    write_image(tmp_path / "capture" / "cam0" / "0001.png", np.zeros((8, 8, 3), np.uint8))
    broken = tmp_path / "broken.yaml"  # OpenCV's own parser fails on it (not a RigError): still one line
    broken.write_text("%YAML:1.0\nK: [1, 2\n")
    cases = [(["--subject", tmp_path / "empty"], "empty: the --subject folder holds no photos (Supported: jpg"),
             (["--subject", tmp_path / "capture", "--rig", tmp_path / "nope.json"],
              "nope.json: calibration does not exist (check the path given to --rig"),
             (["--subject", tmp_path / "empty", tmp_path / "typo.jpg"], "none of the 2 inputs can be used"),
             (["--subject", tmp_path / "capture"], "holds no photos, only subfolders with images: give the subfolder"),
             (["--subject", tmp_path / "capture", "--rig", broken], "broken.yaml: cannot be read (")]
    for args, message in cases:
        result = run("fit", *args, "-o", tmp_path / "out")
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (tmp_path / "out").exists()


def test_a_view_the_fit_cannot_explain_fails_the_subject():
    points = np.linspace([0.0, 0.0], [100.0, 100.0], 68)  # 68 landmarks in a 100-px box
    face = FaceObservation(points, "ibug68", np.array([0.0, 0.0, 100.0, 100.0]))
    frames = [FrameEvidence(face, (200, 200), view=v) for v in (0, 1, 0, 1)]
    fit = SimpleNamespace(rmse_px=np.array([2.0, 330.0, 3.0, np.nan]), evidence=Evidence(frames))
    line = view_misfit(fit, ["cam0", "cam1"], 0.5)
    assert line.startswith("the fit does not explain camera 'cam1': its fitted landmarks lie 3.30 face sizes")
    assert view_misfit(fit, ["cam0", "cam1"], 5.0) == ""
    fit.rmse_px[1] = 4.0
    assert view_misfit(fit, ["cam0", "cam1"], 0.5) == ""


def test_an_image_of_another_size_than_its_calibration_is_refused(tmp_path):
    K = np.array([[800.0, 0, 300], [0, 800.0, 400], [0, 0, 1]])
    rig = Rig({"cam0": RigCamera("cam0", (800, 600), K)}, True, 1.0, {}, [])
    check_image_size(rig, "cam0", (800, 600), tmp_path / "a.png")
    with pytest.raises(ImageError, match="a.png: is 200x100 px .* calibrates camera 'cam0' for 600x800 px images "
                                         "\\(give the calibration"):
        check_image_size(rig, "cam0", (100, 200), tmp_path / "a.png")
    with pytest.raises(ImageError, match="calibration was made on the stored, unrotated pixels"):
        check_image_size(rig, "cam0", (600, 800), tmp_path / "a.png")  # the same image turned by its EXIF tag
    check_image_size(Rig({"cam0": RigCamera("cam0", (800, 800), None)}, False, 1.0, {}, []), "cam0", (100, 200),
                     tmp_path / "a.png")  # an uncalibrated camera takes any size


def test_a_rig_whose_camera_cannot_be_right_writes_nothing(inputs, tmp_path):
    d, config = inputs
    capture = tmp_path / "capture"
    for cam in ("cam0", "cam1"):  # the same photo seen by both cameras ...
        (capture / cam).mkdir(parents=True)
        (capture / cam / "0001.png").write_bytes((d / "person" / "photo0.png").read_bytes())
    K = [[300.0, 0.0, 128.0], [0.0, 300.0, 128.0], [0.0, 0.0, 1.0]]
    cams = {name: RigCamera(name, (256, 256), np.array(K), np.eye(3), np.array(t))
            for name, t in (("cam0", [0.0, 0.0, 0.0]), ("cam1", [50.0, 0.0, 0.0]))}  # ... but cam1 half a metre aside
    save_rig(Rig(cams, True, 1.0, {}, []), tmp_path / "rig.json")
    out = tmp_path / "out"
    result = run("fit", "--subject", capture, "--rig", tmp_path / "rig.json", "-o", out, "--preset", "fast",
                 "--config", config, "--cache-dir", tmp_path / "c")
    assert result.exit_code == 1, result.output
    (failed,) = json.loads((out / "summary.json").read_text())["failed"]
    assert "the fit does not explain camera 'cam" in failed["reason"] and not (out / "capture").exists()

