"""The energy-term registry (fitter.energy.base): one module per term, settings that match the base preset, a
builder that works on a synthetic frame, and terms left out (with a warning) when their evidence is missing."""
from __future__ import annotations

import importlib
import tomllib

import numpy as np
import pytest
import torch

from fitter.energy.base import Term, TermContext, registered_terms
from fitter.evidence import Evidence, FrameEvidence
from fitter.model.albedo import albedo_basis
from fitter.observe.seg_landmarks import brow_line, segment
from fitter.observe.segmentation import PartMasks
from fitter.optimize.fit import build_terms
from fitter.optimize.presets import load_preset, preset_path
from fitter.render import SH_GREY
from fitter.scene import Scene
from synthetic_faces import ground_truth, observe

TERMS = sorted(registered_terms())
SIZE = (384, 384)
FOCAL = 800.0


def base_sections() -> dict:
    return tomllib.loads(preset_path("base").read_text())


# Settings a term declares that base.toml does not give (the term then runs on its constructor's defaults).
UNDECLARED_IN_BASE: dict[str, str] = {}  # none left: every declared setting has its value in base.toml


def settings_case(name: str):
    if name in UNDECLARED_IN_BASE:
        return pytest.param(name, marks=pytest.mark.xfail(reason=UNDECLARED_IN_BASE[name], strict=True))
    return name


class TestRegistry:
    """Every registered term lives in a module of its own name, with a builder and a base-preset section whose
    keys are exactly the term's declared settings."""

    def test_expected_terms(self):
        assert {"landmarks", "prdl", "photometric", "detail", "identity_prior", "expression_prior", "focal_prior",
                "albedo_prior", "light_prior", "displacement_prior"} <= set(TERMS)

    @pytest.mark.parametrize("name", TERMS)
    def test_module_and_builder(self, name):
        spec = registered_terms()[name]
        module = importlib.import_module(f"fitter.energy.{name}")
        assert module.SPEC is spec and spec.name == name
        assert callable(spec.build) and spec.build.__module__ == module.__name__
        assert spec.doc  # `facefit presets show` and the docs print it
        assert set(spec.needs) <= {"photo", "masks"}

    @pytest.mark.parametrize("name", [settings_case(n) for n in TERMS])
    def test_settings_match_base_preset(self, name):
        section = base_sections().get(name)
        assert section is not None, f"base.toml has no [{name}] section"
        assert set(section) == set(registered_terms()[name].settings)


@pytest.fixture(scope="module")
def synthetic_frame(ict):
    """Evidence of one synthetic frame: projected landmarks, a grey photo and part masks from the landmarks."""
    gt = ground_truth(ict, yaw=0.2, size=SIZE, focal=FOCAL)
    face = observe(ict, gt, noise_px=0.3)
    labels, region = segment(face, SIZE)
    masks = PartMasks(labels=labels, occlusion=np.zeros_like(labels, bool), region=region, source="landmarks",
                      weak=True, brow_line=brow_line(face))
    photo = np.full((*SIZE, 3), 0.5, np.float32)
    return gt, Evidence([FrameEvidence(face, SIZE, photo=photo, masks=masks, time_s=0.0)])  # a clip's frame


def ready_state(ict, gt, preset):
    """The true state with what the appearance terms read: light, albedo and a (zero) displacement map."""
    state = gt.detached()
    state.sh = SH_GREY[None].clone()
    state.albedo = albedo_basis(ict, int(preset["albedo"]["modes"])).constant(torch.tensor([0.5, 0.4, 0.3]))
    state.displacement = torch.zeros(1, 1, 32, 32)
    return state


class TestBuild:
    """Each term builds from a TermContext of one synthetic frame carrying its evidence, and its value on that
    frame is one finite number per frame."""

    @pytest.mark.parametrize("name", TERMS)
    def test_builds_and_evaluates(self, ict, synthetic_frame, name):
        gt, evidence = synthetic_frame
        preset = load_preset("vfx")
        term = registered_terms()[name].build(TermContext(ict, evidence, preset, [FOCAL]))
        assert isinstance(term, Term) and term.name == name
        state = ready_state(ict, gt, preset)
        term.configure({"resolution": 32})
        term.initialise(Scene(ict, state))
        term.update(Scene(ict, state))
        value = term(Scene(ict, state))
        assert value.shape == (1,) and bool(torch.isfinite(value).all())
        for values in term.diagnostics(Scene(ict, state)).values():
            assert len(values) == 1


class TestMissingEvidence:
    """build_terms leaves out a term whose evidence the input lacks, and says so in a warning."""

    def test_photo_and_masks_missing(self, ict, synthetic_frame):
        _, evidence = synthetic_frame
        bare = Evidence([FrameEvidence(evidence.frames[0].face, SIZE)])
        preset = load_preset("vfx")
        terms, warnings = build_terms(TermContext(ict, bare, preset, [FOCAL]))
        needing = {n for n, s in registered_terms().items() if s.needs}
        assert needing >= {"photometric", "detail", "prdl"}
        assert not needing & set(terms)
        assert {"landmarks", "focal_prior", "identity_prior"} <= set(terms)
        weighed = {name for stage in preset["stages"] for name, w in stage["weights"].items() if w}
        for name in needing & weighed:
            spec = registered_terms()[name]
            said = [w for w in warnings if repr(name) in w]
            assert len(said) == 1 and all(what in said[0] for what in spec.needs), warnings

    def test_nothing_missing(self, ict, synthetic_frame):
        _, evidence = synthetic_frame
        preset = load_preset("vfx")
        terms, warnings = build_terms(TermContext(ict, evidence, preset, [FOCAL]))
        weighed = {name for stage in preset["stages"] for name, w in stage["weights"].items() if w}
        # every term but those of clips (temporal, in the video stage lists), the optional pose guidance and the
        # optional trust region (anchor: no preset weighs it, docs/photometric.md says why) and the critic (only
        # the `critic` preset weighs it, docs/critic.md) and the cross-view colours (multi-view rigs only, in the
        # rig stage list) and the outline without rendering (no preset weighs it, docs/fitting.md says why)
        assert set(terms) == weighed == set(TERMS) - {"temporal", "pose_guidance", "anchor", "critic", "crossview",
                                                      "outline"}
        assert warnings == []
