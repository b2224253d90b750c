"""The preset schema: every section, key, type and range a preset or ``--config`` file may hold.

The core sections are declared here; each energy term declares its own section (``fitter.energy``'s
registry), so a new term brings its settings with it. Checks run when presets and configs are loaded, before
any image is touched, and name the file, the key, the value and the nearest valid key.
"""
from __future__ import annotations

from ..common.settings import Setting, SettingError, check_table, did_you_mean
from ..energy.base import TermSpec, registered_terms
from ..model.ict import ict_expression_names
from ..observe.segmentation import BACKENDS, PARSERS
from ..render import BACKENDS as RENDERERS
from ..state import PARAMETER_NAMES
from .partial import STAGE_KEY as PARTIAL_KEY, expression_mask

OPTIMIZERS = ("lbfgs", "adam")

CORE_SECTIONS: dict[str, dict[str, Setting]] = {
    "camera": {
        "focal_guess_fov_deg": Setting("float", "horizontal field of view assumed without EXIF", low=1, high=170),
        "focal_px": Setting("float", "> 0: the known focal length in pixels", low=0),
        "uncertainty_stage": Setting("str", "stage whose energy gives the focal length's uncertainty"),
        "focal_std_calibration": Setting("float", "scale of the raw focal uncertainty (benchmark-calibrated)",
                                         positive=True),
    },
    "crop": {
        "size": Setting("int", "resolution of the fitting crop", low=16),
        "margin": Setting("float", "crop margin around the landmarks, fraction of their box", low=0, high=2),
    },
    "init": {
        "rounds": Setting("int", "pose / linear shape alternations", low=1),
        "identity_reg": Setting("float", "ridge weight of the identity solve", low=0),
        "expression_reg": Setting("float", "ridge weight of the expression solve", low=0),
        "use_blendshapes": Setting("bool", "start expressions from the detector's blendshape scores"),
        "use_transform": Setting("bool", "start the rotation from the detector's facial transform"),
    },
    "optimizer": {
        "lbfgs_history": Setting("int", "L-BFGS memory", low=1),
        "lbfgs_tolerance_grad": Setting("float", "L-BFGS gradient tolerance", positive=True),
        "lbfgs_tolerance_change": Setting("float", "L-BFGS change tolerance", positive=True),
        "adam_lr": Setting("float", "Adam learning rate when a stage gives none", positive=True),
    },
    "segmentation": {
        "backend": Setting("str", "part masks for PRDL", choices=BACKENDS),
        "parser": Setting("str", "facer parser", choices=PARSERS),
    },
    "photo": {
        "crop_size": Setting("int", "full resolution of the photometric crop", low=16),
        "parts": Setting("strs", "segmented parts compared by the photometric terms",
                         choices=("left_eye", "right_eye", "left_brow", "right_brow", "nose", "upper_lip",
                                  "lower_lip", "skin")),
    },
    "albedo": {"modes": Setting("int", "Laplacian-harmonic albedo modes per channel", low=1)},
    "guard": {
        "enabled": Setting("bool", "reject stages that move the face away from the image evidence"),
        "max_iou_drop": Setting("float", "largest allowed fall of the mean part IoU below the best kept stage's",
                                low=0, high=1),
        "max_nme_rise": Setting("float", "largest allowed relative rise of the landmark NME in a stage", low=0),
        "weak_masks": Setting("str", "what an IoU fall does when the part masks are drawn from the landmarks",
                              choices=("revert", "flag")),
        "max_nme": Setting("float", "a photo's fit with a larger landmark NME (eye distances) fails", positive=True),
    },
    "export": {
        "albedo_size": Setting("int", "albedo.png side in texels", low=16),
        "detail_levels": Setting("int", "subdivision levels of mesh_detail.obj", low=0, high=4),
    },
    "turn_noise": {  # every fit (fitter.optimize.views.turn_weights)
        "degrees": Setting("float", "off-axis angle at which a face's landmarks and parts count as twice as noisy "
                                    "as a frontal face's; 0 turns it off", low=0),
        "power": Setting("float", "how steeply the noise grows with the off-axis angle", positive=True),
        "terms": Setting("strs", "per-image terms weighed by 1 / noise^2 against the priors"),
    },
    "video": {  # subjects of many frames (fitter.optimize.subject); photos never read it
        "keyframes_min": Setting("int", "fewest keyframes the identity is fitted from (all frames when fewer)", low=1),
        "keyframes_max": Setting("int", "most keyframes the identity is fitted from", low=1),
        "keyframe_spacing": Setting("int", "one keyframe per this many instants, within the min and max", low=1),
        "keyframe_spread_deg": Setting("float", "yaw/pitch distance at which keyframes count as spread", positive=True),
        "averaged_terms": Setting("strs", "per-frame terms averaged over the frames of a joint fit"),
        "averaged_power": Setting("float", "those terms are divided by (instants fitted together)^power: 1 = a "
                                           "clip counts like one photo against the identity prior", low=0, high=1),
        "start_rotation": Setting("str", "starting head rotation of every frame",
                                  choices=("landmarks3d", "transform", "pnp")),
        "track_chunk": Setting("int", "instants tracked at once (1: frame by frame)", low=1),
        "track_restart_deg": Setting("float", "a frame whose own start is turned more than this from the previous "
                                              "frame's pose starts from its own", positive=True),
        "window": Setting("int", "instants per joint refinement window", low=3),
        "window_overlap": Setting("int", "instants shared by consecutive windows", low=0),
        "max_gap_s": Setting("float", "a longer run without detections starts a new segment (s)", positive=True),
        "cut_jump": Setting("float", "a face jump between consecutive frames, in face sizes, that is a cut",
                            positive=True),
        "shot_frames": Setting("int", "frames each segment of a cut clip reads its own identity from", low=1),
        "shot_frames_min": Setting("int", "fewest detected frames a segment needs to be compared", low=1),
        "shot_identity_mm": Setting("float", "face distance (mm) above which a segment may be another person",
                                    positive=True),
        "photo_identity_mm": Setting("float", "a photo folder: face distance (mm) of one photo from the others' "
                                              "above which it may show another person; 0 skips the check", low=0),
        "shot_cut": Setting("float", "a colour change between consecutive frames (Bhattacharyya, 0-1) that is a "
                                     "shot cut; 1 turns it off", low=0, high=1),
        "view_noise_deg": Setting("float", "off-axis angle at which a multi-view view counts as twice as noisy as "
                                           "its instant's most frontal view", positive=True),
        "view_noise_power": Setting("float", "how steeply a view's noise grows with its off-axis angle", positive=True),
        "view_weighted_terms": Setting("strs", "per-image terms weighted by their view's trust in multi-view phases"),
        "max_view_error": Setting("float", "a multi-view subject fails when its fitted landmarks lie further than "
                                           "this from some camera's detections (median RMS over the landmarks' box "
                                           "size): no head pose explains that view", positive=True),
    },
}

TOP_LEVEL: dict[str, Setting] = {
    "renderer": Setting("str", "rasterizer backend", choices=RENDERERS),
}

STAGE_KEYS: dict[str, Setting] = {
    "name": Setting("str", "stage name (reports, timings)"),
    "free": Setting("strs", "parameters the stage optimises", choices=PARAMETER_NAMES),
    "iterations": Setting("int", "optimiser iterations per round", low=1),
    "rounds": Setting("int", "rounds (discrete updates between them)", low=1),
    "optimizer": Setting("str", "optimiser", choices=OPTIMIZERS),
    "displacement_resolution": Setting("int", "displacement map size in texels for this stage", low=4),
    "lr_end": Setting("float", "Adam: the rate at the stage's last iteration as a fraction of `lr` (cosine decay; "
                               "default 1, constant)", low=0.0, high=1.0),
    "guarded": Setting("bool", "the no-harm guard may reject this stage (default true); the result of "
                                "a stage it may not reject is what later stages are judged against"),
    "subjects": Setting("bool", "the stage also runs in the keyframe fits of videos, photo folders and rigs "
                                "(default true; false: single photos only)"),
    "dolly": Setting("bool", "Adam: a step of log_focal also moves the head along its line of sight by the same "
                             "factor, so only perspective changes (fitter.optimize.dolly; default false)"),
    PARTIAL_KEY: Setting("strs", "expression names (shell patterns, e.g. jaw*) the stage may move; the others "
                                 "stay fixed (default: all)"),
}
STAGE_REQUIRED = ("name", "free", "iterations", "weights")
# The photo schedule ([[stages]], [[append_stages]]), a multi-view rig's refinement of its keyframe fit, and the
# video phases after the keyframe fit (fitter.optimize.subject): tracking frame by frame, refinement over
# windows, a final polish.
STAGE_LISTS = ("stages", "append_stages", "rig_stages", "track_stages", "window_stages", "polish_stages")
RESERVED = ("extends", "preset") + STAGE_LISTS


def sections(terms: dict[str, TermSpec] | None = None) -> dict[str, dict[str, Setting]]:
    """Every known section and its keys: the core ones and one per registered energy term."""
    terms = registered_terms() if terms is None else terms
    out = dict(CORE_SECTIONS)
    for name, spec in terms.items():
        out[name] = spec.settings
    return out


def stage_keys(terms: dict[str, TermSpec]) -> dict[str, Setting]:
    keys = dict(STAGE_KEYS)
    for spec in terms.values():
        keys.update(spec.stage_settings)
    return keys


def check_document(data: dict, source: str, complete: bool = False) -> None:
    """Check one preset or config document (``source`` names it in errors).

    ``complete``: ``data`` is a fully merged preset: every stage must then have its required keys.
    """
    terms = registered_terms()
    known_sections = sections(terms)
    try:
        for key, value in data.items():
            if key in RESERVED:
                continue
            if key in TOP_LEVEL:
                TOP_LEVEL[key].check(key, value)
            elif key in known_sections:
                check_table(key, value, known_sections[key])
            else:
                known = sorted(list(known_sections) + list(TOP_LEVEL))
                raise SettingError(f"[{key}]: unknown section{did_you_mean(key, known)}; known: {', '.join(known)}")
        for list_name in STAGE_LISTS:
            stages = data.get(list_name, [])
            if not isinstance(stages, list):
                raise SettingError(f"{list_name} must be an array of tables ([[{list_name}]])")
            for k, stage in enumerate(stages):
                check_stage(stage, f"[[{list_name}]] #{k + 1}", terms, complete)
    except SettingError as exc:
        raise SettingError(f"{source}: {exc}") from None


def check_stage(stage: dict, where: str, terms: dict[str, TermSpec], complete: bool) -> None:
    if not isinstance(stage, dict):
        raise SettingError(f"{where} must be a table")
    if "name" in stage:
        where = f"{where} ({stage['name']!r})"
    keys = stage_keys(terms)
    for key, value in stage.items():
        if key == "weights":
            check_weights(value, f"{where} weights", terms)
        elif key == "lr":
            check_lr(value, f"{where} lr")
        elif key in keys:
            keys[key].check(f"{where} {key}", value)
        else:
            raise SettingError(f"{where} {key}: unknown stage setting{did_you_mean(key, list(keys) + ['weights', 'lr'])}"
                               f"; known: {', '.join(sorted(list(keys) + ['weights', 'lr']))}")
    if complete:
        missing = [k for k in STAGE_REQUIRED if k not in stage]
        if missing:
            raise SettingError(f"{where}: missing {', '.join(missing)}")
        if not any(float(w) > 0 for w in stage["weights"].values()):
            raise SettingError(f"{where}: weighs no energy term (every weight is 0)")


def check_weights(weights, where: str, terms: dict[str, TermSpec]) -> None:
    if not isinstance(weights, dict):
        raise SettingError(f"{where} = {weights!r}: expected a table {{ term = weight, ... }}")
    for name, value in weights.items():
        if name not in terms:
            raise SettingError(f"{where}: unknown energy term {name!r}{did_you_mean(name, terms)}; "
                               f"known: {', '.join(sorted(terms))}")
        Setting("float", low=0).check(f"{where}.{name}", value)


def check_lr(lr, where: str) -> None:
    if isinstance(lr, dict):
        for name, value in lr.items():
            if name not in PARAMETER_NAMES:
                raise SettingError(f"{where}: unknown parameter {name!r}{did_you_mean(name, PARAMETER_NAMES)}")
            Setting("float", positive=True).check(f"{where}.{name}", value)
    else:
        Setting("float", positive=True).check(where, lr)


def check_merged(preset: dict, source: str) -> None:
    """A merged preset: every section and key, complete stages, each term's learning rates, at least one stage."""
    check_document(preset, source, complete=True)
    if not preset.get("stages"):
        raise SettingError(f"{source}: the configuration defines no [[stages]]")
    terms = registered_terms()
    for section, keys in sections(terms).items():  # the shipped presets set every key: the code reads them all
        missing = [section] if not isinstance(preset.get(section), dict) else [
            f"{section}.{key}" for key in keys if key not in preset[section]]
        if missing:
            raise SettingError(f"{source}: {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} missing; a "
                               "merged preset has every section and key (start from load_preset(NAME) and edit it)")
    for section, key in (("video", "averaged_terms"), ("video", "view_weighted_terms"), ("turn_noise", "terms")):
        for name in preset.get(section, {}).get(key, []):
            if name not in terms:
                raise SettingError(f"{source}: [{section}] {key}: unknown energy term {name!r}"
                                   f"{did_you_mean(name, terms)}; known: {', '.join(sorted(terms))}")
    for stage in (st for list_name in STAGE_LISTS for st in preset.get(list_name, [])):
        lr = stage.get("lr")
        if isinstance(lr, dict):
            missing = [p for p in stage["free"] if p not in lr]
            if missing:
                raise SettingError(f"{source}: stage {stage['name']!r} lr table has no rate for {missing}")
        if PARTIAL_KEY in stage:
            try:
                expression_mask(ict_expression_names(), list(stage[PARTIAL_KEY]), stage["name"])
            except ValueError as exc:
                raise SettingError(f"{source}: {exc}") from None
