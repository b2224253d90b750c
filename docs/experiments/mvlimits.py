"""What limits an uncalibrated rig's rotations (docs/video.md): fast's landmark stages on the bench's scenes
with the true landmarks or the detections, the priors scaled, the iterations multiplied, more instants.

usage: mvlimits.py SEEDS [--exact] [--prior-scale 0.01] [--iterations 15] [--instants 8]
e.g.   mvlimits.py 0,1 --exact --prior-scale 0.01 --iterations 15
Scenes with other than 3 instants are cached apart: set FACEFIT_EXP_CACHE to another folder for them."""
import argparse, copy, time
from pathlib import Path
import sys
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mvexp import evidence_of, model, scene_data
from fitter.bench.video import REGION, frame_source, identity_error, rig_errors, uncalibrated
from fitter.optimize.presets import load_preset
from fitter.optimize.subject import fit_sequence


def landmark_preset(prior_scale: float, iterations: float) -> dict:
    preset = copy.deepcopy(load_preset("fast"))
    preset["stages"] = [s for s in preset["stages"] if s["name"] != "prdl"]
    for s in preset["stages"]:
        s["iterations"] = int(s["iterations"] * iterations)
        for k in ("identity_prior", "expression_prior"):
            if k in s["weights"]:
                s["weights"][k] = s["weights"][k] * prior_scale
    return preset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("seeds")
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--prior-scale", type=float, default=1.0)
    ap.add_argument("--iterations", type=float, default=1.0)
    ap.add_argument("--instants", type=int, default=3)
    args = ap.parse_args()
    preset = landmark_preset(args.prior_scale, args.iterations)
    region = model.topology.region(REGION)
    for seed in (int(s) for s in args.seeds.split(",")):
        data = scene_data(seed, instants=args.instants)
        evidence = evidence_of(data, args.exact)
        t = time.perf_counter()
        fit = fit_sequence(model, evidence, preset, uncalibrated(data["scene"].rig), data["names"],
                           source=frame_source(data["images"], evidence, preset))
        errors = rig_errors(data["scene"].rig, fit, data["names"])
        print(seed, vars(args), "identity", round(identity_error(model, fit.state.identity.numpy(),
                                                                  data["scene"].head.identity, region), 3),
              "rotations", [round(a, 2) for a in errors["relative_rotation_error_deg"]],
              "baselines", [round(float(b), 3) for b in errors["baseline_ratio"]],
              "s", round(time.perf_counter() - t, 1), flush=True)


if __name__ == "__main__":
    main()
