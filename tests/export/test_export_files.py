"""Atomic output (fitter.common.files): one temporary-then-rename writer for bytes, text, npz and images, and
all-or-nothing face folders."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fitter.common.files import staged_folder, write_bytes, write_json, write_npz, write_text


def test_staged_folder_is_all_or_nothing(tmp_path):
    dest = tmp_path / "face"
    with pytest.raises(RuntimeError):
        with staged_folder(dest) as stage:
            write_json(stage / "report.json", {"a": 1})
            raise RuntimeError("boom")
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    with staged_folder(dest) as stage:
        write_npz(stage / "params.npz", x=np.arange(3))
        write_json(stage / "report.json", {"a": np.float32(2.5)})
    assert json.loads((dest / "report.json").read_text()) == {"a": 2.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face"]
    with staged_folder(dest) as stage:  # overwrite replaces the whole folder
        write_json(stage / "other.json", {})
    assert sorted(p.name for p in dest.iterdir()) == ["other.json"]


def test_write_bytes_replaces_atomically_and_cleans_up(tmp_path):
    path = write_bytes(tmp_path / "sub" / "a.bin", b"first")
    assert path.read_bytes() == b"first" and oct(path.stat().st_mode & 0o777) != oct(0o600)
    write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    with pytest.raises(TypeError):
        write_bytes(path, "not bytes")  # fails while writing the temporary file
    assert path.read_bytes() == b"second" and [p.name for p in path.parent.iterdir()] == ["a.bin"]
    write_text(path, "é")
    assert path.read_bytes() == "é".encode("utf-8")
