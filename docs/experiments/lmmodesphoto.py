"""The facefit CLI with the landmark term whitened (the config's `[landmarks] error_modes`) only in the photometric
stages (session 43, docs/fitting.md "Built, measured, left off"): the landmark stages keep the landmarks' identity,
the image terms may correct the detector's shared error. Monkeypatched; arguments as for `facefit`, e.g.

    python docs/experiments/lmmodesphoto.py bench consistency ../shared/data/videos/*.mpg --presets default \
        --frames 8 --config K5.toml -o OUT
"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fitter.energy.landmarks import LandmarkTerm

_call = LandmarkTerm.__call__


def configure(self, stage):
    self._whiten = str(stage.get("name", "")).startswith("photometric")


def call(self, scene):
    if getattr(self, "_whiten", False) or self.modes is None:
        return _call(self, scene)
    modes, self.modes = self.modes, None
    try:
        return _call(self, scene)
    finally:
        self.modes = modes


LandmarkTerm.configure = configure
LandmarkTerm.__call__ = call
from cli.main import main  # noqa: E402
sys.argv = ["facefit"] + sys.argv[1:]
main()
