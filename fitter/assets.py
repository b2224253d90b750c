"""Where the shipped assets live, for editable and non-editable installs alike."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def asset_folder() -> Path:
    """The folder the shipped assets are installed in (whether or not a given file is there)."""
    return Path(str(resources.files("facefit_assets")))


def asset_path(name: str) -> Path:
    """Path of a shipped asset file (``assets/<name>`` in the source tree)."""
    path = asset_folder() / name
    if not path.exists():
        raise FileNotFoundError(
            f"facefit asset {name!r} is missing at {path}; reinstall facefit (pip install .) "
            "or rebuild it with the script in assets/build/"
        )
    return path


def example_path(name: str) -> Path:
    """Path of a shipped example photo (``examples/images/<name>`` in the source tree; may not exist)."""
    return Path(str(resources.files("facefit_examples").joinpath(name)))
