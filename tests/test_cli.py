"""End to end through the CLI: real detector, real fitting, real files; bad inputs never stop the batch."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"
REPORT_KEYS = {"input", "face_index", "landmarks", "timings_s", "energies", "warnings"}


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    (d / "grace_hopper.jpg").write_bytes((EXAMPLES / "grace_hopper.jpg").read_bytes())
    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)
    cv2.imwrite(str(d / "noise.png"), noise)
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return d


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def test_fit_batch_outputs_contract_and_failures(batch_dir, tmp_path):
    out = tmp_path / "out"
    missing = tmp_path / "nope.jpg"  # a mistyped path fails on its own line; the rest is still fitted
    result = run("fit", batch_dir, missing, "-o", out, "--preset", "fast", "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fitted"] == 1
    reasons = {Path(f["input"]).name: f["reason"] for f in summary["failed"]}
    assert set(reasons) == {"noise.png", "broken.jpg", "nope.jpg"}
    assert "no face" in reasons["noise.png"] and "broken.jpg" in reasons["broken.jpg"]
    assert reasons["nope.jpg"] == f"{missing}: does not exist (check the path)" and "Supported" not in result.output
    face = out / "grace_hopper"
    for name in ("mesh.obj", "mesh.mtl", "params.npz", "report.json", "overlay.png"):
        assert (face / name).stat().st_size > 0, name
    report = json.loads((face / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert report["face_index"] == 0 and report["landmarks"]["rmse_px"] < 5.0
    assert 0 < report["landmarks"]["nme"] < 0.05 and report["timings_s"]["total"] > 0
    params = np.load(face / "params.npz")
    assert params["K"].shape == (3, 3) and params["identity"].shape == (100,) and str(params["units"]) == "cm"
    assert tuple(params["image_size"]) == (606, 517)
    # no staging leftovers
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    # resume: nothing refitted, still success; --overwrite refits
    again = run("fit", batch_dir, "-o", out, "--preset", "fast", "--cache-dir", tmp_path / "cache")
    assert again.exit_code == 0
    s2 = json.loads((out / "summary.json").read_text())
    assert s2["fitted"] == 0 and s2["skipped"] == 1
    over = run("fit", batch_dir / "grace_hopper.jpg", "-o", out, "--preset", "fast", "--overwrite",
               "--cache-dir", tmp_path / "cache")
    assert over.exit_code == 0 and json.loads((out / "summary.json").read_text())["fitted"] == 1


def test_nothing_fitted_exits_nonzero(batch_dir, tmp_path):
    result = run("fit", batch_dir / "noise.png", batch_dir / "broken.jpg", "-o", tmp_path / "o",
                 "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 1
    assert len(json.loads((tmp_path / "o" / "summary.json").read_text())["failed"]) == 2


def test_nothing_usable_is_a_usage_error(tmp_path):
    result = run("fit", tmp_path / "nope.jpg", "-o", tmp_path / "o")
    assert result.exit_code == 2 and "nope.jpg: does not exist" in result.output
    assert not (tmp_path / "o").exists()


def test_several_faces_get_numbered_folders(tmp_path):
    a = cv2.imread(str(EXAMPLES / "grace_hopper.jpg"))
    b = cv2.imread(str(EXAMPLES / "Luciano.png"))
    b = cv2.resize(b, (a.shape[1], a.shape[0]))
    cv2.imwrite(str(tmp_path / "pair.png"), np.concatenate([a, b], 1))
    out = tmp_path / "out"
    result = run("fit", tmp_path / "pair.png", "-o", out, "--preset", "fast", "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["pair_face0", "pair_face1"]
    reports = [json.loads((out / f"pair_face{k}" / "report.json").read_text()) for k in (0, 1)]
    assert [r["face_index"] for r in reports] == [0, 1]
    largest = run("fit", tmp_path / "pair.png", "-o", tmp_path / "one", "--largest", "--preset", "fast",
                  "--cache-dir", tmp_path / "cache")
    assert largest.exit_code == 0 and (tmp_path / "one" / "pair").is_dir()


def test_doctor_lists_components():
    result = run("doctor")
    assert result.exit_code == 0
    for word in ("mediapipe", "fan", "facer", "facefit parser", "pytorch3d", "builtin"):
        assert word in result.output


def test_default_preset_runs_the_photometric_stages(tmp_path):
    out = tmp_path / "out"
    result = run("fit", EXAMPLES / "Luciano.png", "-o", out, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "Luciano" / "report.json").read_text())
    assert "photometric" in report["energies"]["photometric-128"]
    assert not [w for w in report["warnings"] if "skipped" in w], report["warnings"]
    assert report["parts"]["source"] == "facefit:parser/wild128" and report["parts"]["weak"] is False
    assert set(report["parts"]["iou"]) >= {"skin", "nose", "left_eye"}
    assert (out / "Luciano" / "albedo.png").stat().st_size > 0
    assert "map_Kd albedo.png" in (out / "Luciano" / "mesh.mtl").read_text()
    params = np.load(out / "Luciano" / "params.npz")
    assert params["sh"].shape == (1, 9, 3) and params["albedo"].shape[1] == 3


def test_video_inputs_are_reported_not_dropped(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    result = run("fit", tmp_path, "-o", tmp_path / "out", "--preset", "fast", "--cache-dir", tmp_path / "c")
    assert result.exit_code == 1  # nothing could be fitted
    failed = json.loads((tmp_path / "out" / "summary.json").read_text())["failed"]
    assert len(failed) == 1 and "video" in failed[0]["reason"] and failed[0]["input"].endswith("clip.avi")


VFX_SHORT = """
[photo]
crop_size = 256

[export]
albedo_size = 256
detail_levels = 1

[[stages]]
name = "rigid"
free = ["rotation", "translation", "log_focal"]
iterations = 10
rounds = 1
weights = { landmarks = 1.0, focal_prior = 1.0 }

[[stages]]
name = "photometric-64"
free = ["rotation", "translation", "sh", "albedo"]
resolution = 64
optimizer = "adam"
iterations = 10
lr = { rotation = 0.002, translation = 0.05, sh = 0.02, albedo = 0.01 }
weights = { landmarks = 0.1, photometric = 100.0, albedo_prior = 1.0, light_prior = 1.0 }

[[append_stages]]
name = "displacement-64"
free = ["displacement"]
resolution = 128
displacement_resolution = 64
iterations = 10
rounds = 1
weights = { detail = 1.0, displacement_prior = 1.0 }
"""


def test_vfx_preset_fits_a_displacement_map_and_exports_it(tmp_path):
    """The vfx path end to end (shortened stages): detail term, displacement maps, detail mesh."""
    config = tmp_path / "short.toml"
    config.write_text(VFX_SHORT)
    out = tmp_path / "out"
    result = run("fit", EXAMPLES / "Luciano.png", "-o", out, "--preset", "vfx", "--config", config,
                 "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    face = out / "Luciano"
    report = json.loads((face / "report.json").read_text())
    assert report["energies"]["displacement-64"]["detail"] > 0
    for name in ("displacement.exr", "displacement.png", "normal.png", "mesh_detail.obj", "albedo.png"):
        assert (face / name).stat().st_size > 0, name
    params = np.load(face / "params.npz")
    png = cv2.imread(str(face / "displacement.png"), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png.shape == (64, 64)
    disp = png / 65535.0 * float(params["displacement_scale"]) + float(params["displacement_offset"])
    assert np.isfinite(disp).all() and np.abs(disp).max() > 0  # the map moved
    assert np.abs(disp).max() < 0.2  # and stayed within 2 mm (the priors hold it)
    detail_vertices = sum(1 for line in (face / "mesh_detail.obj").open() if line.startswith("v "))
    mesh_vertices = sum(1 for line in (face / "mesh.obj").open() if line.startswith("v "))
    assert detail_vertices > mesh_vertices


def test_ctrl_c_says_how_to_resume(batch_dir, tmp_path, monkeypatch):
    import fitter.app.batch

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fitter.app.batch, "run_batch", interrupted)
    result = run("fit", batch_dir / "grace_hopper.jpg", "-o", tmp_path / "o", "--preset", "fast")
    assert result.exit_code == 130
    assert "run the same command again to fit the rest" in " ".join(result.output.split())

