"""MediaPipe's face-oval landmarks slide along the side of the head (as the 68-point jaw does), behind "A landmark
embedding per view angle" in docs/fitting.md (tried, not adopted): fast's landmark stages on the cached wild
detections of seed 0. Each of the 22 oval points below the temples may move to any vertex in a 0.4-cm slab at its
height, on its side, from its own place back to 5 cm around the head (the candidate projecting nearest to the
detection, chosen between rounds). "oval_weight" replaces their weights (calibrated reliabilities 0.05-0.74).
usage: ovalexp.py NAME '{"on": 1, "band": 0.4, "reach": 5.0, "oval_weight": 1.0}'"""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from photexp import MODEL, fast_stages, print_wild_errors
import fitter.energy.landmarks as L

RIGHT = [356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377]
LEFT = [127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148]
SPEC = {}

def oval_candidates(model, fmt, *a, **k):
    if fmt != "mediapipe478" or not SPEC.get("on"):
        return {}
    topo = model.topology; emb = topo.embeddings["mediapipe478"]
    mean = model.mean.detach().cpu().numpy()
    allowed = np.flatnonzero(topo.regions["face_and_head"])
    P = mean[allowed]
    band, reach = SPEC.get("band", 0.4), SPEC.get("reach", 5.0)
    out = {}
    idx = SPEC.get("which", "all")
    ids = RIGHT + LEFT if idx == "all" else [i for i in RIGHT + LEFT if i not in (377, 148, 400, 176)]
    for lm in ids:
        tri = topo.triangles[emb.triangles[lm]]; p = (mean[tri] * emb.barycentrics[lm][:, None]).sum(0)
        own = allowed[np.argmin(np.linalg.norm(P - p, axis=1))]
        s = np.sign(p[0])
        ok = (np.abs(P[:, 1] - p[1]) < band) & (np.sign(P[:, 0]) == s) & (np.abs(P[:, 0]) >= np.abs(p[0]) - 0.3) \
             & (P[:, 2] <= p[2] + 0.3) & (np.linalg.norm((P - p)[:, [0, 2]], axis=1) < reach)
        near = allowed[ok]
        out[lm] = np.concatenate([[own], near[near != own]]).astype(np.int64)
    if SPEC.get("verbose"):
        print({k: len(v) for k, v in out.items()})
    return out
L.contour_candidates = oval_candidates

_init = L.LandmarkTerm.__init__
def init(self, model, targets, *a, **k):
    _init(self, model, targets, *a, **k)
    w = SPEC.get("oval_weight")
    if w is not None and targets.landmark_format == "mediapipe478":
        ids = RIGHT + LEFT
        weights = self.targets.weights.clone(); weights[:, ids] = float(w) * (targets.weights[:, ids] > 0)
        self.targets = L.LandmarkTargets(self.targets.points, weights, self.targets.landmark_format)
L.LandmarkTerm.__init__ = init

def main():
    name, spec = sys.argv[1], json.loads(sys.argv[2]); SPEC.update(spec)
    keep = ("rigid", "landmarks") if spec.get("stages", "lm") == "lm" else ("rigid", "landmarks", "prdl")
    print_wild_errors(name, fast_stages(keep), int(spec.get("n", 50)), int(spec.get("seed", 0)))

if __name__ == "__main__":
    main()
