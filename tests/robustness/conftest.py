"""Fixtures of the robustness tests (helpers in robust_cli.py)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from robust_cli import FACE, SHORT_FAST


@pytest.fixture(scope="session")
def short_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "short_fast.toml"
    path.write_text(SHORT_FAST)
    return path


@pytest.fixture(scope="session")
def face_bgr() -> np.ndarray:
    return cv2.imread(str(FACE))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("observations")
