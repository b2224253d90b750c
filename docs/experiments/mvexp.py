"""Multi-view diagnosis behind docs/video.md: the bench's scenes (detections cached), fitted through the rig with
variants: the view-weighted terms, the true landmark positions instead of the detections, views left out.

usage: mvexp.py PRESET SEEDS [--rig cal|none] [--weighted landmarks,prdl,...|none] [--exact] [--drop 0,3]
                [--outline W [--outline-stages prdl,landmarks]]  (the outline term in those keyframe stages)
e.g.   mvexp.py default 0,1,2 --drop 0,3      (scene 1 without its two near-profile views)"""
import argparse, dataclasses, os, pickle, time
from pathlib import Path
import numpy as np
from fitter.bench.synthetic import PreparedCase, true_landmarks
from fitter.bench.video import (REGION, frame_source, identity_error, off_axis_deg, render_scene_views, rig_errors,
                                uncalibrated)
from fitter.evidence import Evidence, FrameEvidence, undetected_face
from fitter.model import load_ict
from fitter.optimize.presets import load_preset
from fitter.optimize.subject import fit_sequence
from fitter.synth.clips import sample_multiview

CACHE = Path(os.environ.get("FACEFIT_EXP_CACHE", Path.home() / ".cache/facefit/experiments")) / "multiview"
model = load_ict()


def scene_data(seed: int, instants: int = 3, size: int = 256) -> dict:
    """Rendered images, detections, true landmark pixels and off-axis angles of a bench scene (cached)."""
    path = CACHE / f"scene{seed}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    scene = sample_multiview(model, seed, size=size)
    names = list(scene.rig.cameras)
    views = render_scene_views(model, scene, seed, instants, "clean")
    images = [im.rendered.image for im in views]
    frames = [dict(face=im.face, sharp=im.sharpness, v=im.view, i=im.instant, angle=off_axis_deg(im.case),
                   truth=true_landmarks(model, PreparedCase(im.case, im.rendered, None, 0.0))) for im in views]
    data = dict(scene=scene, names=names, images=images, frames=frames, size=size)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))
    return data


def evidence_of(data: dict, exact: bool = False, drop: tuple = ()) -> Evidence:
    found = next(fr["face"] for fr in data["frames"] if fr["face"] is not None)
    out = []
    for fr in data["frames"]:
        face = fr["face"]
        if face is not None and exact:
            face = dataclasses.replace(face, landmarks=fr["truth"].astype(np.float32))
        out.append(FrameEvidence(face if face is not None else undetected_face(found), (data["size"],) * 2,
                                 view=fr["v"], instant=fr["i"], detected=face is not None and fr["v"] not in drop,
                                 sharpness=fr["sharp"]))
    return Evidence(out)


def detection_nme(data: dict) -> list:
    """(instant, view, off-axis deg, NME of the detection against the true points) per image."""
    rows = []
    for fr in data["frames"]:
        if fr["face"] is not None:
            err = np.linalg.norm(fr["face"].landmarks - fr["truth"], axis=1).mean() / fr["face"].inter_ocular
            rows.append((fr["i"], fr["v"], round(fr["angle"]), round(float(err), 4)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("preset")
    ap.add_argument("seeds")
    ap.add_argument("--rig", default="cal", choices=("cal", "none"))
    ap.add_argument("--weighted", default=None)
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--drop", default="")
    ap.add_argument("--outline", type=float, default=0.0)
    ap.add_argument("--outline-stages", default="prdl")
    ap.add_argument("--outline-delta", type=float, default=1.0)
    args = ap.parse_args()
    preset = load_preset(args.preset)
    if args.outline:
        preset["outline"] = dict(preset["outline"], robust_delta=args.outline_delta)
        for stage in preset["stages"]:
            if stage["name"] in args.outline_stages.split(","):
                stage["weights"] = dict(stage["weights"], outline=args.outline)
    if args.weighted is not None:
        terms = [] if args.weighted == "none" else args.weighted.split(",")
        preset["video"] = dict(preset["video"], view_weighted_terms=terms)
    drop = tuple(int(v) for v in args.drop.split(",") if v)
    region = model.topology.region(REGION)
    for seed in (int(s) for s in args.seeds.split(",")):
        data = scene_data(seed)
        print(seed, "detections (instant, view, deg, NME):", detection_nme(data), flush=True)
        evidence = evidence_of(data, args.exact, drop)
        scene = data["scene"]
        rig = scene.rig if args.rig == "cal" else uncalibrated(scene.rig)
        t = time.perf_counter()
        fit = fit_sequence(model, evidence, preset, rig, data["names"], source=frame_source(data["images"], evidence,
                                                                                            preset))
        row = {"identity_error_mm": round(identity_error(model, fit.state.identity.numpy(), scene.head.identity,
                                                         region), 3), "seconds": round(time.perf_counter() - t, 1)}
        if args.rig == "none":
            errors = rig_errors(scene.rig, fit, data["names"])
            row.update(rotation_deg=[round(a, 2) for a in errors["relative_rotation_error_deg"]],
                       baseline_ratio=[round(float(b), 3) for b in errors["baseline_ratio"]])
        print(seed, args.preset, row, fit.suspects, flush=True)


if __name__ == "__main__":
    main()
