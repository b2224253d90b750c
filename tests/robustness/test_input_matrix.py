"""One batch over every kind of broken or unusual input: each gets its outcome and one clear line, nothing
else in the batch is lost, and no traceback reaches the user."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from robust_cli import face_folders, fit_args, reasons_by_name, run_cli, summary_of

UNICODE_NAME = "Ŝtéfan 顔.png"
EXIF_ORIENTATION = 0x0112


def _jpeg(bgr: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def make_inputs(folder: Path, face: np.ndarray) -> dict[str, tuple[str, str]]:
    """Write the matrix's inputs; returns name -> (expected status, words its line must hold)."""
    h, w = face.shape[:2]
    rgb = face[:, :, ::-1]
    alpha = np.full((h, w), 255, np.uint8)
    alpha[:, : w // 6] = 0  # fully transparent strip
    alpha[: h // 8] = 128  # and a half-transparent one
    cv2.imwrite(str(folder / "transparent.png"), np.dstack([face, alpha]))
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "deep16.png"), face.astype(np.uint16) * 257)
    Image.fromarray(np.ascontiguousarray(rgb)).convert("CMYK").save(folder / "cmyk.jpg", quality=90)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # "rotate 90 clockwise to display": stored turned a quarter counter-clockwise
    upright = rgb[:, 50:350]  # 400 high, 300 wide: the stored picture is 300 high, 400 wide
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1))).save(folder / "rotated.jpg", exif=exif, quality=90)
    cv2.imencode(".png", face)[1].tofile(str(folder / UNICODE_NAME))
    tiny = np.full((320, 320, 3), 128, np.uint8)
    tiny[128:192, 128:192] = cv2.resize(face, (64, 64), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(folder / "tiny.png"), tiny)
    huge = np.full((4000, 6000, 3), 140, np.uint8)  # 24 megapixels, cheap to encode: mostly one colour
    huge[1600:2400, 2600:3400] = cv2.resize(face, (800, 800))
    (folder / "huge.jpg").write_bytes(_jpeg(huge, 80))
    good = _jpeg(face)
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    png = cv2.imencode(".png", face)[1].tobytes()
    (folder / "corrupt.png").write_bytes(png[:64] + np.random.default_rng(0).bytes(4000))
    (folder / "empty.jpg").write_bytes(b"")
    noise = cv2.imencode(".png", np.random.default_rng(1).integers(0, 255, (120, 160, 3), np.uint8))[1].tobytes()
    (folder / "landscape.png").write_bytes(noise)
    (folder / "bad_noface.png").write_bytes(noise)  # same bytes: its observation comes from the cache
    (folder / "notes.txt").write_text("shopping list\n")
    (folder / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(100))
    return {
        "transparent.png": ("fitted", ""),
        "gray.png": ("fitted", ""),
        "deep16.png": ("fitted", ""),
        "cmyk.jpg": ("fitted", ""),
        "rotated.jpg": ("fitted", ""),
        UNICODE_NAME: ("fitted", ""),
        "tiny.png": ("fitted", ""),
        "huge.jpg": ("fitted", ""),
        "truncated.jpg": ("failed", "truncated"),
        "corrupt.png": ("failed", "PNG data is corrupt or cut short"),
        "empty.jpg": ("failed", "is empty (0 bytes)"),
        "landscape.png": ("failed", "no face found"),
        "bad_noface.png": ("failed", "no face found"),
        "notes.txt": ("skipped_input", "'.txt' is not a supported image or video type"),
        "IMG_0001.HEIC": ("skipped_input", "HEIC/HEIF photo"),
    }


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, face_bgr, short_config, cache_dir):
    folder = tmp_path_factory.mktemp("inputs")
    expected = make_inputs(folder, face_bgr)
    out = tmp_path_factory.mktemp("out") / "batch"
    result = run_cli(fit_args(folder, out, short_config, cache_dir))
    return expected, folder, out, result, summary_of(out)


def test_the_batch_succeeds_and_its_summary_is_complete(matrix):
    expected, _, out, result, summary = matrix
    assert result.exit_code == 0, result.output
    assert summary["complete"] is True and summary["images"] == summary["images_planned"] == 13
    fitted = sorted(n for n, (status, _) in expected.items() if status == "fitted")
    assert summary["fitted"] == len(fitted) and summary["skipped"] == 0
    assert sorted(Path(f["input"]).name for f in summary["faces"] if f["status"] == "fitted") == fitted
    assert face_folders(out) == sorted(Path(n).stem for n in fitted)
    for name in face_folders(out):  # each complete, strict JSON
        report = json.loads((out / name / "report.json").read_text())
        assert (out / name / "overlay.png").stat().st_size > 0 and (out / name / "mesh.obj").stat().st_size > 0
        assert report["resume_key"]["content"] and report["resume_key"]["settings"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging or temporary left


@pytest.mark.parametrize("name", ["truncated.jpg", "corrupt.png", "empty.jpg", "landscape.png", "bad_noface.png"])
def test_each_failure_has_one_line_naming_its_file(matrix, name):
    expected, folder, _, result, summary = matrix
    reason = reasons_by_name(summary)[name]
    assert reason.startswith(str(folder / name) + ":") and expected[name][1] in reason, reason
    assert f"failed {reason}" in result.output  # the same line on the terminal, unwrapped
    assert "BytesIO" not in reason and "0x" not in reason


def test_a_cache_hit_names_the_current_file_and_says_it_once(matrix):
    _, _, _, _, summary = matrix
    reason = reasons_by_name(summary)["bad_noface.png"]
    assert "landscape" not in reason, reason
    assert reason.count("no face found") == 1, reason


@pytest.mark.parametrize("name", ["notes.txt", "IMG_0001.HEIC"])
def test_unsupported_files_in_the_folder_are_listed_not_dropped(matrix, name):
    expected, folder, _, result, summary = matrix
    skipped = {Path(s["input"]).name: s["reason"] for s in summary["skipped_inputs"]}
    assert set(skipped) == {"notes.txt", "IMG_0001.HEIC"}
    assert expected[name][1] in skipped[name] and skipped[name].startswith(str(folder / name))
    assert f"skipped {skipped[name]}" in result.output


def test_transparent_png_keeps_its_overlay(matrix):
    _, _, out, _, _ = matrix
    overlay = cv2.imread(str(out / "transparent" / "overlay.png"))
    assert overlay is not None and overlay.shape == (400, 400, 3)
    assert overlay[200, 5].tolist() == [128, 128, 128]  # transparent pixels composited over mid grey


def test_exif_rotation_is_applied_before_fitting(matrix):
    _, _, out, _, _ = matrix
    report = json.loads((out / "rotated" / "report.json").read_text())
    assert report["camera"]["image_size"] == [400, 300]  # (height, width) of the upright picture
    assert abs(report["pose"]["roll_deg"]) < 20  # fitted upright, not lying on its side
