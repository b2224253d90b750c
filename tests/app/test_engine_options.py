"""The engine options refuse what cannot work with one line (exit code 2) before anything is written."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from fitter import __version__
from fitter.app.batch import BatchOptions
from fitter.app.ray_engine import RAY_MISSING, FitWorker, WorkerCheck
from paths import EXAMPLES
from robust_cli import run_cli

PHOTO = EXAMPLES / "Bryan.png"


def test_missing_ray_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does where Ray is not installed
    result = run_cli(["fit", PHOTO, "-o", tmp_path / "out", "--engine", "ray"])
    assert result.exit_code == 2 and RAY_MISSING in result.output
    assert "Error: --engine ray needs Ray: pip install 'facefit[ray]'" in result.output.splitlines()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options, says", [
    (["--cpus-per-fit", "2"], "--cpus-per-fit only apply with --engine ray"),
    (["--address", "auto", "--gpus-per-fit", "1"], "--address, --gpus-per-fit only apply with --engine ray"),
    (["--engine", "ray", "--jobs", "2"], "--jobs is for the local engine"),
    (["--engine", "ray", "--device", "cuda"], "--device cuda with --engine ray needs --gpus-per-fit"),
    (["--engine", "ray", "--gpus-per-fit", "0.5"], "reserves GPUs the fits would not use"),
])
def test_engine_options_that_do_not_fit_together(tmp_path, options, says):
    result = run_cli(["fit", PHOTO, "-o", tmp_path / "out", *options])
    assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output
    assert not (tmp_path / "out").exists()


@pytest.fixture
def in_worker(monkeypatch):
    """A FitWorker built in this process changes its folder and torch's threads: both restored after."""
    monkeypatch.chdir(Path.cwd())
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_a_worker_that_cannot_see_the_run_says_which_node_and_why(tmp_path, in_worker):
    """What a Ray worker checks before its first input and before each one (Ray may restart it elsewhere)."""
    marker = tmp_path / ".facefit-ray-run.1.x.tmp"
    marker.touch()
    fine = FitWorker(1, WorkerCheck(__version__, str(marker), str(tmp_path), needs_cwd=True))
    assert fine.problem() == "" and fine.ready()[1] == "" and Path.cwd() == tmp_path
    elsewhere = FitWorker(1, WorkerCheck(__version__, str(tmp_path / "nfs" / marker.name), str(tmp_path), False))
    assert "does not see the output folder" in elsewhere.problem()
    outcome = elsewhere.fit("photo.png", "photo", str(tmp_path / "nfs"), BatchOptions(preset={}))
    assert outcome.error.startswith("photo.png: node ") and "shared" not in outcome.error.split(":")[0]
    assert not (tmp_path / "nfs").exists()  # nothing written where other nodes would never see it
    older = FitWorker(1, WorkerCheck("0.0.1", str(marker), str(tmp_path), False))
    assert f"runs facefit {__version__}, not the driver's 0.0.1" in older.problem()
    lost = FitWorker(1, WorkerCheck(__version__, str(marker), str(tmp_path / "gone"), needs_cwd=True))
    assert "cannot enter the folder facefit was started in" in lost.problem()


def test_unreachable_head_is_one_line(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'facefit[ray]')")
    result = run_cli(["fit", PHOTO, "-o", tmp_path / "out", "--engine", "ray", "--address", "127.0.0.1:1"])
    assert result.exit_code == 2 and "cannot reach the Ray head at 127.0.0.1:1" in result.output
    assert not (tmp_path / "out").exists()
