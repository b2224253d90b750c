"""A batch killed mid-way leaves a summary; the next run cleans up after it, keeps what was finished and
completes the rest. Real processes, a real SIGKILL."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

from robust_cli import (EXAMPLES, NATIVE_LOG_MARKERS, ROOT, cli_command, cli_env, face_folders, fit_args,
                        run_cli_process, summary_of)

NAMES = ["Luciano.png", "grace_hopper.jpg", "astronaut.png", "Chris.jpeg"]
FIRST_FACE_TIMEOUT_S = 90.0


def _wait_for_first_face(out, proc) -> None:
    deadline = time.monotonic() + FIRST_FACE_TIMEOUT_S
    while time.monotonic() < deadline:
        if out.is_dir() and any((out / name / "report.json").exists() for name in face_folders(out)):
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    raise AssertionError("no face folder appeared")


def test_killed_batch_then_resume(tmp_path, short_config, cache_dir):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in NAMES:
        shutil.copy(EXAMPLES / name, inputs / name)
    out = tmp_path / "out"
    args = fit_args(inputs, out, short_config, cache_dir)
    proc = subprocess.Popen(cli_command(args + ["--verbose"]), cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_first_face(out, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the killed run: a summary that says it is incomplete, and MediaPipe's lines in the verbose log
    killed = summary_of(out)
    assert killed["complete"] is False and killed["images_planned"] == 4
    assert any(m in (out / "facefit-native.log").read_text() for m in NATIVE_LOG_MARKERS)
    finished = {name: (out / name / "report.json").stat().st_mtime_ns for name in face_folders(out)}
    assert 1 <= len(finished) < 4

    # what a kill during an export leaves behind, and what a live writer's folder looks like
    dead = proc.pid
    for leftover in (f".Chris.{dead}.k1ll3d00.partial", f".astronaut.old-{dead}"):
        (out / leftover).mkdir()
        (out / leftover / "mesh.obj").write_text("half")
    (out / f".summary.json.{dead}.abcdefgh.tmp").write_text("{")
    live = out / f".Luciano.{os.getpid()}.l1ve0000.partial"
    live.mkdir()

    again = run_cli_process(args)
    assert again.returncode == 0, again.stderr
    assert not [m for m in NATIVE_LOG_MARKERS if m in again.stderr], again.stderr
    summary = summary_of(out)
    assert summary["complete"] is True and summary["images"] == 4 and not summary["failed"]
    assert len(summary["removed_leftovers"]) == 3
    assert face_folders(out) == sorted(n.rsplit(".", 1)[0] for n in NAMES)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [live.name]  # a live writer's is kept
    for name, mtime in finished.items():  # finished faces were not refitted
        assert (out / name / "report.json").stat().st_mtime_ns == mtime, name
    rows = {f["folder"]: f for f in summary["faces"]}
    assert summary["skipped"] == len(finished) and summary["fitted"] == 4 - len(finished)
    for name in finished:  # and keep the figures their run measured
        report = json.loads((out / name / "report.json").read_text())
        assert rows[name]["status"] == "skipped" and rows[name]["rmse_px"] == report["landmarks"]["rmse_px"]
        assert rows[name]["seconds"] == report["timings_s"]["total"]
