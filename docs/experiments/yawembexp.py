"""A MediaPipe embedding per view angle (docs/fitting.md, "A landmark embedding per view angle"; tried, not adopted).

MediaPipe's landmarks on a turned face sit on other surface points than on a frontal one (the far cheek's contour
slides to the silhouette). ``build`` renders neutral ICT faces at view yaws -60..60 deg (bins 15 deg wide), finds
the surface under each detection (assets/build/build_mediapipe_embedding.py's method) and writes one embedding and
one reliability per bin. ``fit`` runs fast's rigid + landmark stages on the cached wild detections (seed 0, as
outlineexp.py) with the landmark term's points blended between bins by the current view yaw (the shipped embedding
for |yaw| <= 30 deg, where 30 renders a bin were noisier than its 80); ``mv`` does the same for mvexp.py's rigs.
usage: yawembexp.py build OUT.npz [--train 30 --calibration 15]
       YAWBINS=OUT.npz yawembexp.py fit NAME '{"emb": 1, "rel": 0}'
       YAWBINS=OUT.npz YAWSPEC='{"emb": 1}' yawembexp.py mv fast 0,1,2,3,4 --rig none"""
import json, os, sys
from pathlib import Path
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT), str(ROOT / "assets" / "build")]
import numpy as np, torch
import fitter.energy.landmarks as L

CENTERS = np.arange(-60, 61, 15.0)
BASE = ROOT / "assets" / "ict_mediapipe_embedding.npz"
SPEC = {}


def build(out: str, ntrain: int = 30, ncal: int = 15, seed: int = 4321) -> None:
    from scipy.spatial.transform import Rotation
    from build_mediapipe_embedding import (allowed_triangles, model_surface_masks, neutralish_case, snap_median,
                                           surface_samples)
    from fitter.camera import project
    from fitter.io import LoadedImage
    from fitter.model import load_ict
    from fitter.observe import observe_image
    from fitter.synth.cases import render_case
    model = load_ict(); topo = model.topology
    skin, eyes = allowed_triangles(model)
    base = np.load(BASE)
    skin_m, eyes_m = model_surface_masks(model, skin, eyes)
    tri_pts = model.mean.numpy()[topo.triangles]

    def case_at(b, i, s):
        c = neutralish_case(model, 1000 * b + i, s)
        rng = np.random.default_rng([s, b, i, 7])
        yaw = rng.uniform(CENTERS[b] - 7.5, CENTERS[b] + 7.5)
        c.rotation = Rotation.from_euler("YXZ", [yaw, rng.uniform(-15, 15), rng.uniform(-8, 8)], degrees=True).as_rotvec()
        return c

    def detect(c):
        r = render_case(model, c)
        obs = observe_image(LoadedImage.from_array(r.image), cache=False, search="none")
        return r, (obs.faces[0].landmarks if obs.faces else None)

    nb = len(CENTERS)
    tris = np.repeat(base["triangles"][None], nb, 0); bary = np.repeat(base["barycentrics"][None], nb, 0)
    rel = np.ones((nb, 478), np.float32)
    for b in range(nb):
        samples, _ = surface_samples(model, (case_at(b, i, seed) for i in range(ntrain)), skin, eyes)
        for k in range(478):
            if len(samples[k]) >= 3:  # else the shipped embedding's point stays
                allowed = np.flatnonzero(eyes_m if k >= 468 else skin_m)
                tris[b, k], bary[b, k] = snap_median(np.asarray(samples[k]), allowed, tri_pts)
        res_bin, res_base = [], []
        for i in range(ncal):
            c = case_at(b, 500 + i, seed + 1); r, det = detect(c)
            if det is None:
                continue
            size = np.sqrt(np.prod(np.ptp(det, 0).clip(1)))
            h, w_ = c.image_size; K = torch.tensor([[[c.focal, 0, w_ / 2], [0, c.focal, h / 2], [0, 0, 1.0]]])
            for out_list, (tt, bb) in ((res_bin, (tris[b], bary[b])), (res_base, (base["triangles"], base["barycentrics"]))):
                pts = (r.camera_vertices[topo.triangles[tt]] * bb[:, :, None]).sum(1)
                pix = project(torch.as_tensor(pts, dtype=torch.float32)[None], K)[0].numpy()
                out_list.append(np.linalg.norm(pix - det, axis=1) / size)
        rb, r0 = np.asarray(res_bin), np.asarray(res_base)
        sigma = np.sqrt((rb ** 2).mean(0))
        rel[b] = np.clip((np.median(sigma) / sigma) ** 2, 0.05, 4.0)
        print(json.dumps(dict(center=float(CENTERS[b]), calibration=len(rb),
                              shipped_rms=round(float(np.median(np.sqrt((r0[:, :468] ** 2).mean(1)))), 4),
                              bin_rms=round(float(np.median(np.sqrt((rb[:, :468] ** 2).mean(1)))), 4))), flush=True)
    np.savez(out, centers=CENTERS, triangles=tris, barycentrics=bary, reliability=rel)


def bins(path: str, keep=(-60.0, -45.0, 45.0, 60.0), inner: float = 30.0) -> dict:
    """The built bins at ``keep`` with the shipped embedding at +-``inner`` (and everything between)."""
    raw, base = np.load(path), np.load(BASE)
    pick = lambda sign: [int(np.flatnonzero(raw["centers"] == c)[0]) for c in keep if np.sign(c) == sign]
    neg, pos = pick(-1), pick(1)
    stack = lambda key: np.stack([raw[key][i] for i in neg] + [base[key]] * 2 + [raw[key][i] for i in pos])
    return {"centers": np.array([raw["centers"][i] for i in neg] + [-inner, inner] + [raw["centers"][i] for i in pos]),
            "triangles": stack("triangles"), "barycentrics": stack("barycentrics"), "reliability": stack("reliability")}


def view_yaw_deg(scene) -> torch.Tensor:
    """Per image (F,): signed yaw of the ray from the face to its camera, about the face's own vertical axis."""
    frames = scene.state.num_frames
    pts = torch.cat([torch.zeros(1, 1, 3), torch.eye(3)[None]], 1).expand(frames, 4, 3).to(scene.state.rotation)
    cam = scene.to_camera(pts)
    c, x, z = cam[:, 0], cam[:, 1] - cam[:, 0], cam[:, 3] - cam[:, 0]
    return torch.rad2deg(torch.atan2((-c * x).sum(-1), (-c * z).sum(-1)))


def bin_weights(yaw: torch.Tensor, centers: np.ndarray) -> torch.Tensor:
    """(F, B) piecewise-linear (hat) weights over the bin centres, clamped at the ends."""
    eye = np.eye(len(centers))
    return torch.as_tensor([[np.interp(y, centers, eye[b]) for b in range(len(centers))] for y in yaw.tolist()],
                           dtype=yaw.dtype)


def patch(path: str) -> None:
    """Make fitter.energy.landmarks.LandmarkTerm blend the bins (``SPEC["emb"]``) and their reliabilities
    (``SPEC["rel"]``) by the current view yaw (MediaPipe's 478 points only)."""
    B = bins(path)
    init, surface, residuals = L.LandmarkTerm.__init__, L.LandmarkTerm.surface_points, L.LandmarkTerm.residuals

    def new_init(self, model, targets, *a, **k):
        raw = targets.weights.clone()
        init(self, model, targets, *a, **k)
        if targets.landmark_format == "mediapipe478":
            self.raw_weights = raw
            self.bin_tris = torch.as_tensor(model.topology.triangles[B["triangles"]])
            self.bin_bary = torch.as_tensor(B["barycentrics"])
            self.bin_rel = torch.as_tensor(B["reliability"], dtype=raw.dtype)

    def new_surface(self, scene):
        if not hasattr(self, "bin_tris") or not SPEC.get("emb"):
            return surface(self, scene)
        with torch.no_grad():
            w = bin_weights(view_yaw_deg(scene), B["centers"]).to(self.bin_bary)
        nb, n = self.bin_tris.shape[:2]
        unique, inverse = torch.unique(self.bin_tris.reshape(-1, 3), return_inverse=True)
        corners = scene.vertices_at(unique)[:, inverse].reshape(-1, nb, n, 3, 3)
        pts = (corners * self.bin_bary[None, :, :, :, None]).sum(3)
        nrm = torch.cross(corners[..., 1, :] - corners[..., 0, :], corners[..., 2, :] - corners[..., 0, :], dim=-1)
        nrm = nrm / nrm.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return (w[:, :, None, None] * pts).sum(1), (w[:, :, None, None] * nrm).sum(1)

    def new_residuals(self, scene):
        if hasattr(self, "bin_tris") and SPEC.get("rel"):
            with torch.no_grad():
                w = bin_weights(view_yaw_deg(scene), B["centers"]).to(self.raw_weights)
                self.targets = L.LandmarkTargets(self.targets.points, self.raw_weights * (w @ self.bin_rel),
                                                 self.targets.landmark_format)
        return residuals(self, scene)

    L.LandmarkTerm.__init__, L.LandmarkTerm.surface_points, L.LandmarkTerm.residuals = new_init, new_surface, new_residuals


def fit(name: str, spec: dict) -> None:
    from photexp import fast_stages, print_wild_errors
    print_wild_errors(name, fast_stages(), int(spec.get("n", 50)), int(spec.get("seed", 0)))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "build":
        args = sys.argv[2:]
        opt = {a.lstrip("-"): int(v) for a, v in zip(args[1::2], args[2::2])}
        build(args[0], opt.get("train", 30), opt.get("calibration", 15))
    else:
        patch(os.environ["YAWBINS"])
        if command == "fit":
            SPEC.update(json.loads(sys.argv[3])); fit(sys.argv[2], SPEC)
        elif command == "mv":
            SPEC.update(json.loads(os.environ.get("YAWSPEC", "{}")))
            import mvexp
            sys.argv = [sys.argv[0]] + sys.argv[2:]
            mvexp.main()
