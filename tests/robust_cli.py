"""Helpers for the robustness tests: the real CLI run on inputs made on the fly.

Fits use ``--preset fast`` with the stages shortened (SHORT_FAST): these tests are about what happens around
a fit (files, messages, bookkeeping), not its accuracy, and the whole folder must stay well under a minute.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from fitter.app.toml_text import toml_text
from fitter.optimize.presets import load_preset

from paths import EXAMPLES, REPO as ROOT  # noqa: E402
FACE = EXAMPLES / "Luciano.png"  # 400 x 400, one frontal face

SHORT_ITERATIONS = {"rigid": 5, "landmarks": 8, "prdl": 3}  # of fast's 15, 40 x 2 and 15 x 2


def short_fast_stages() -> list[dict]:
    """The fast preset's stages, each run once and briefly."""
    return [{**stage, "iterations": SHORT_ITERATIONS[stage["name"]], "rounds": 1}
            for stage in load_preset("fast")["stages"]]


SHORT_FAST = toml_text({"stages": short_fast_stages()})

# what MediaPipe's C++ side prints when nobody stops it
NATIVE_LOG_MARKERS = ("W0000", "I0000", "INFO: Created TensorFlow Lite", "Logging before InitGoogle")


def fit_args(inputs, out: Path, config: Path, cache: Path, *extra, preset: str = "fast") -> list[str]:
    inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    return ["fit", *map(str, inputs), "-o", str(out), "--preset", preset, "--config", str(config),
            "--cache-dir", str(cache), *map(str, extra)]


def run_cli(args: list[str]):
    """The real CLI in this process; a crash shows up as the result's exception, never as a test error."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output, result.output
    return result


def cli_command(args: list[str]) -> list[str]:
    """``python -m cli.main ARGS`` run from the checkout under test (cwd first on sys.path)."""
    return [sys.executable, "-m", "cli.main", *map(str, args)]


def cli_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def run_cli_process(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(args), cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                          timeout=timeout)


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def reasons_by_name(summary: dict) -> dict[str, str]:
    return {Path(f["input"]).name: f["reason"] for f in summary["failed"]}


def face_folders(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
