"""The landmark stage reading the large identity modes (docs/fitting.md, after "MediaPipe's blendshape scores";
tried, not adopted): fast's rigid + landmark stages on the cached wild detections of seed 0, the landmark stage's
identity prior set to weight "w" with identity_prior_ramp "ramp" (and likewise the PRDL stage's with
"stages": "prdl"). usage: rampexp.py NAME '{"w": 1, "ramp": 3, "stages": "lm", "prdl_w": 3, "prdl_ramp": 0}'"""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import fast_stages, print_wild_errors

name, spec = sys.argv[1], json.loads(sys.argv[2])
p = fast_stages(("rigid", "landmarks") if spec.get("stages", "lm") == "lm" else ("rigid", "landmarks", "prdl"))
for s in p["stages"]:
    if s["name"] == "landmarks" and "w" in spec:
        s["weights"] = dict(s["weights"], identity_prior=float(spec["w"])); s["identity_prior_ramp"] = float(spec.get("ramp", 0))
    if s["name"] == "prdl" and "prdl_w" in spec:
        s["weights"] = dict(s["weights"], identity_prior=float(spec["prdl_w"])); s["identity_prior_ramp"] = float(spec.get("prdl_ramp", 0))
print_wild_errors(name, p, int(spec.get("n", 50)), int(spec.get("seed", 0)))
