"""An output folder that cannot take the outputs is refused before any fitting: one line, exit code 2."""
from __future__ import annotations

import os
import shutil
import time

import pytest

from fitter.app.batch import FACE_OUTPUT_BYTES, BatchOptions, estimate_output_bytes
from fitter.common.files import OutputFolderError, check_output_folder
from fitter.optimize.presets import load_preset
from robust_cli import FACE, fit_args, run_cli

REFUSED_FAST_S = 10.0  # start-up only: a refused run must not have fitted anything first


def _refused(args, tmp_path):
    start = time.perf_counter()
    result = run_cli(args)
    assert result.exit_code == 2, result.output
    assert time.perf_counter() - start < REFUSED_FAST_S
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_a_file_where_the_folder_should_be(tmp_path, short_config, cache_dir):
    target = tmp_path / "existing_file.txt"
    target.write_text("keep me")
    line = _refused(fit_args(FACE, target, short_config, cache_dir), tmp_path)
    assert str(target) in line and "is a file, not a folder" in line and "-o" in line
    assert target.read_text() == "keep me"


def test_a_face_folder_of_an_earlier_run_is_not_an_output_folder(tmp_path, short_config, cache_dir):
    face = tmp_path / "out" / "astronaut"  # its refit would delete whatever a run put inside it
    face.mkdir(parents=True)
    (face / "report.json").write_text('{"input": "astronaut.png"}')
    line = _refused(fit_args(FACE, face, short_config, cache_dir), tmp_path)
    assert str(face) in line and "is a face folder of an earlier run" in line and "parent" in line
    assert sorted(p.name for p in face.iterdir()) == ["report.json"]


def test_a_folder_below_a_file_cannot_be_created(tmp_path, short_config, cache_dir):
    (tmp_path / "existing_file.txt").write_text("x")
    target = tmp_path / "existing_file.txt" / "out"
    line = _refused(fit_args(FACE, target, short_config, cache_dir), tmp_path)
    assert str(target) in line and "cannot be created" in line and "is a file" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod; the file-in-the-way tests cover root")
def test_a_folder_without_write_permission(tmp_path, short_config, cache_dir):
    target = tmp_path / "locked"
    target.mkdir()
    target.chmod(0o500)
    try:
        line = _refused(fit_args(FACE, target, short_config, cache_dir), tmp_path)
    finally:
        target.chmod(0o700)
    assert str(target) in line and "not writable" in line and "permission denied" in line
    assert list(target.iterdir()) == []


def test_not_enough_free_space_is_one_line(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(OutputFolderError) as err:
        check_output_folder(tmp_path / "out", need_bytes=free + 10**15, need_text="3 face(s) to fit")
    line = str(err.value)
    assert "\n" not in line and str(tmp_path / "out") in line and "free" in line and "3 face(s)" in line
    assert check_output_folder(tmp_path / "out", need_bytes=1) == tmp_path / "out"
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # the write probe left nothing


def test_the_estimate_follows_the_preset_table(tmp_path):
    fast = BatchOptions(preset=load_preset("fast"))
    vfx = BatchOptions(preset={**load_preset("fast"), "preset": "vfx"})
    need_fast, how = estimate_output_bytes([FACE, FACE.with_name("grace_hopper.jpg")], tmp_path, fast)
    need_vfx, _ = estimate_output_bytes([FACE], tmp_path, vfx)
    assert 2 * FACE_OUTPUT_BYTES["fast"] < need_fast < 2 * FACE_OUTPUT_BYTES["vfx"]
    assert need_vfx > FACE_OUTPUT_BYTES["vfx"] and "2 face(s)" in how and "fast" in how
