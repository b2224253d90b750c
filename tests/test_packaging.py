"""setup.cfg lists its packages by hand (assets/ and examples/images/ install under other names): every
package folder of the source tree must be listed, or a wheel install silently lacks it."""
from __future__ import annotations

import configparser

from paths import REPO


def _listed() -> tuple[set[str], dict[str, str]]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    packages = {line.strip() for line in cfg["options"]["packages"].splitlines() if line.strip()}
    dirs = dict(line.split(" = ") for line in cfg["options"]["package_dir"].strip().splitlines())
    return packages, {name.strip(): folder.strip() for name, folder in dirs.items()}


def test_every_package_folder_is_listed():
    packages, dirs = _listed()
    for root in ("fitter", "cli"):
        for init in (REPO / root).rglob("__init__.py"):
            name = ".".join(init.parent.relative_to(REPO).parts)
            assert name in packages, f"{name} is missing from setup.cfg [options] packages"


def test_renamed_packages_point_at_folders_with_init():
    packages, dirs = _listed()
    assert {"facefit_assets", "facefit_examples"} <= set(dirs)
    for name, folder in dirs.items():
        assert name in packages
        assert (REPO / folder / "__init__.py").exists(), f"{folder} needs an __init__.py to install as {name}"
