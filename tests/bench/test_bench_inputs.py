"""`facefit bench photos | consistency | render`: a bad file or option is one line, and never costs the rest of
the benchmark (the figures of the good files are still written)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "fake.jpg").write_text("not a photo at all")
    cv2.imwrite(str(d / "noise.png"), np.random.default_rng(0).integers(0, 255, (96, 96, 3), np.uint8))
    (d / "notes.txt").write_text("ignored")
    return d


def test_photos_with_unreadable_and_faceless_files_still_write_their_result(folder, tmp_path):
    result = run("bench", "photos", folder, "-o", tmp_path / "out", "--presets", "fast")
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "out" / "agreement.json").read_text())
    reasons = {f["input"].rsplit("/", 1)[-1]: f["reason"] for f in written["failed"]}
    assert set(reasons) == {"fake.jpg", "noise.png"} and "no face found" in reasons["noise.png"]
    assert written["faces"] == 0 and written["summary"]["fast"]["nme_median"] is None
    assert "failed" in result.output and "fake.jpg" in result.output


def test_consistency_says_why_it_has_no_figures(folder, tmp_path):
    result = run("bench", "consistency", folder, "-o", tmp_path / "out", "--presets", "fast")
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "out" / "consistency.json").read_text())
    assert written["summary"] == {} and written["notes"]
    assert "every person needs at least 2 frames" in " ".join(result.output.split())


@pytest.mark.parametrize("args, message", [
    (["consistency", "PHOTO", "-o", "OUT"], "neither a video nor a folder of photos"),
    (["photos", "IN", "-o", "OUT", "--presets", ","], "names no preset"),
    (["consistency", "IN", "-o", "OUT", "--presets", " , "], "names no preset"),
])
def test_refusals(folder, tmp_path, args, message):
    paths = {"PHOTO": folder / "noise.png", "IN": folder, "OUT": tmp_path / "out"}
    result = run("bench", *[paths.get(a, a) for a in args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_render_on_a_missing_gpu_is_one_line(tmp_path):
    result = run("bench", "render", "-o", tmp_path / "out", "--device", "cuda")
    assert result.exit_code == 2 and "no CUDA device" in result.output
