"""--engine ray on a local Ray (2 CPUs, this machine): the same face folders, statuses and numbers as the
local engine; a worker that dies mid-face is listed as failed when it is not retried, retried otherwise, and a
re-run fits only what is missing."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'facefit[ray]')")

from engines import CORRUPT, face_rows, failed_names, hidden_entries, small_batch  # noqa: E402
from fitter.app.batch import CRASH_ONCE_ENV, run_batch  # noqa: E402
from fitter.app.ray_engine import RayEngine  # noqa: E402
from fitter.io import discover_inputs  # noqa: E402
from robust_cli import face_folders, run_cli, run_cli_process, summary_of  # noqa: E402

PHOTOS = {"Bryan.png": "Bryan.png", "Luciano.png": "Luciano.png"}
OBJECT_STORE_BYTES = 100 * 2**20  # the workers get file names and return small outcomes
SAME_FLOATS = 1e-9  # one thread on both sides: the same operations in the same order, the same floats


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES,
             logging_level=logging.WARNING)
    yield
    ray.shutdown()


def test_ray_engine_matches_local_engine(local_ray, tmp_path, short_fits):
    inputs = small_batch(tmp_path / "in", PHOTOS)
    # a process of its own with one thread for torch, numba and BLAS, as each Ray worker has (one CPU per fit)
    local = run_cli_process(["fit", inputs, "-o", tmp_path / "local", *short_fits.cli()])
    remote = run_cli(["fit", inputs, "-o", tmp_path / "ray", *short_fits.cli(), "--engine", "ray"])
    assert local.returncode == remote.exit_code == 0, (local.stderr, remote.output)
    a, b = summary_of(tmp_path / "local"), summary_of(tmp_path / "ray")
    assert (a["engine"], b["engine"]) == ("local", "ray") and b["complete"] is True
    assert [row[:2] for row in face_rows(b)] == [row[:2] for row in face_rows(a)] == [
        ("Bryan", "fitted"), ("Luciano", "fitted")]
    np.testing.assert_allclose([row[2:] for row in face_rows(b)], [row[2:] for row in face_rows(a)], rtol=SAME_FLOATS)
    assert b["failed"] == a["failed"] and failed_names(b) == [CORRUPT]
    for name in face_folders(tmp_path / "local"):
        ours, theirs = (np.load(tmp_path / side / name / "params.npz") for side in ("local", "ray"))
        for key in ours.files:
            if ours[key].dtype.kind == "f":
                np.testing.assert_allclose(theirs[key], ours[key], rtol=SAME_FLOATS, atol=SAME_FLOATS, err_msg=key)
        reports = [json.loads((tmp_path / side / name / "report.json").read_text()) for side in ("local", "ray")]
        assert reports[0]["input"] == reports[1]["input"] and reports[0]["resume_key"] == reports[1]["resume_key"]
    assert hidden_entries(tmp_path / "ray") == []


def test_worker_killed_mid_face(local_ray, tmp_path, monkeypatch, short_fits):
    inputs = small_batch(tmp_path / "in", PHOTOS)
    out, marker = tmp_path / "out", tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ONCE_ENV, str(marker))
    with RayEngine(retries=0) as engine:  # not retried: the face is lost and says why
        first = run_batch(discover_inputs([inputs]).images, out, short_fits.options(), engine=engine)
    assert marker.exists() and first["fitted"] == 1 and first["complete"] is True
    lost = [f for f in first["failed"] if f["input"] != str(inputs / CORRUPT)]
    assert len(lost) == 1 and "the worker fitting it was lost 1 time(s)" in lost[0]["reason"]
    assert [n for n in first["removed_leftovers"] if n.endswith(".partial")]  # its half-written staging folder
    assert hidden_entries(out) == [] and len(face_folders(out)) == 1
    kept = {name: (out / name / "report.json").stat().st_mtime_ns for name in face_folders(out)}

    marker.unlink()  # the next run's worker dies once more, mid-face, and Ray retries it
    again = run_cli(["fit", inputs, "-o", out, *short_fits.cli(), "--engine", "ray"])
    assert again.exit_code == 0, again.output
    summary = summary_of(out)
    assert marker.exists() and summary["complete"] is True
    assert (summary["fitted"], summary["skipped"], failed_names(summary)) == (1, 1, [CORRUPT])
    assert face_folders(out) == ["Bryan", "Luciano"] and hidden_entries(out) == []
    assert {n: (out / n / "report.json").stat().st_mtime_ns for n in kept} == kept  # not fitted twice
