"""Part masks drawn from the landmarks, refined by the pixels' colours: closer to the true parts? (2026-12-07, s42)

Without facer's weights the part masks are polygons around MediaPipe's landmarks, so PRDL on them restates the
landmarks (fast is level with the landmark stages on the wild benchmark). This probe asks whether the pixels can
move the polygons' edges towards the truth: per eye (and the lips together), OpenCV's GrabCut in a small window,
the polygon eroded as sure part, a band of `band` x the inter-ocular distance around its edge free to change
(skin or the part only; the inner mouth for the lips), everything else sure not-part. The refined and the drawn
masks are scored against the TRUE geometry's part labels rendered 1:1 into the masks' region (wild renders, the
benchmark's own render and detection). Result in docs/segmentation.md ("Colour-refined masks").
usage: colourmasks.py SEED N ['{"parts": ["eyes"], "band": 0.06}']     (about 5 minutes for 50 cases)"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from fitter.bench.synthetic import case_K, case_masks, match_face, prepare  # noqa: E402
from fitter.crop import FitCrop  # noqa: E402
from fitter.model import load_ict  # noqa: E402
from fitter.observe.segmentation import PART_NAMES  # noqa: E402
from fitter.optimize.presets import load_preset  # noqa: E402
from fitter.optimize.quality import rendered_part_labels  # noqa: E402

LEFT_EYE, RIGHT_EYE, LEFT_BROW, RIGHT_BROW, NOSE, UPPER_LIP, LOWER_LIP, SKIN = range(1, 9)


def holes(mask):
    """pixels not in mask and not connected to the border (4-neighbourhood)."""
    inv = (~mask).astype(np.uint8)
    n, lab = cv2.connectedComponents(inv, connectivity=4)
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    return (inv > 0) & ~np.isin(lab, border)


def disk(r):
    r = max(int(round(r)), 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def grow(m, r):
    return cv2.dilate(m.astype(np.uint8), disk(r)) > 0


def shrink(m, r):
    return cv2.erode(m.astype(np.uint8), disk(r)) > 0


def cut(rgb, mask, iterations=4):
    """GrabCut with an initial mask: returns the fg mask."""
    fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    if (mask == cv2.GC_FGD).sum() < 4 or (mask == cv2.GC_BGD).sum() < 8:
        return fg
    mask = mask.copy()
    b, f = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(np.ascontiguousarray(rgb[..., ::-1]), mask, None, b, f, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return fg
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def largest_near(m, core):
    """components of m touching core."""
    n, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
    keep = np.unique(lab[core & m])
    return np.isin(lab, keep[keep > 0]) & m


def refine(rgb, labels, scale, band=0.06, parts=("lips", "eyes"), ctx=0.15, erode=0.5):
    """rgb: (h, w, 3) uint8 over the masks' region; labels: (h, w); scale: face size in px (inter-ocular)."""
    out = labels.copy()
    b = max(band * scale, 1.0)
    groups = []
    if "lips" in parts:
        groups.append(("lips", (UPPER_LIP, LOWER_LIP)))
    if "eyes" in parts:
        groups += [("eye", (LEFT_EYE,)), ("eye", (RIGHT_EYE,))]
    for kind, values in groups:
        fg = np.isin(labels, values)
        if fg.sum() < 6:
            continue
        inner = holes(fg) & (labels == 0) if kind == "lips" else np.zeros_like(fg)
        ys, xs = np.nonzero(fg)
        pad = int(np.ceil(b + ctx * scale))
        y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, labels.shape[0])
        x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, labels.shape[1])
        sl = (slice(y0, y1), slice(x0, x1))
        f, inn, lab = fg[sl], inner[sl], labels[sl]
        thick = cv2.distanceTransform(np.pad(f, 1).astype(np.uint8), cv2.DIST_L2, 3).max()
        core = shrink(f, max(min(b, thick * erode), 1.0))
        if core.sum() < 4:
            continue
        allowed = np.isin(lab, (SKIN,) + values) | inn
        mutable = grow(f, b) & ~core & allowed
        mask = np.full(f.shape, cv2.GC_BGD, np.uint8)
        mask[mutable] = cv2.GC_PR_BGD
        mask[mutable & f] = cv2.GC_PR_FGD
        mask[core] = cv2.GC_FGD
        new = cut(rgb[sl], mask)
        new = largest_near(new & (mutable | core), core)
        new |= f & ~mutable
        # assign labels: new part pixels by the nearest original part; removed ones by the nearest of skin / inner
        region = out[sl]
        if len(values) == 2:
            d = [cv2.distanceTransform((lab != v).astype(np.uint8), cv2.DIST_L2, 3) for v in values]
            pick = np.where(d[0] <= d[1], values[0], values[1])
        else:
            pick = np.full(lab.shape, values[0])
        removed = f & ~new
        added = new & ~f
        if kind == "lips" and inn.any():
            ds = cv2.distanceTransform((lab != SKIN).astype(np.uint8), cv2.DIST_L2, 3)
            di = cv2.distanceTransform((~inn).astype(np.uint8), cv2.DIST_L2, 3)
            back = np.where(di < ds, 0, SKIN)
        else:
            back = np.full(lab.shape, SKIN)
        region[removed] = back[removed]
        region[added] = pick[added]
        out[sl] = region
    return out


MODEL = load_ict()
seed, n = int(sys.argv[1]), int(sys.argv[2])
kw = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
preset = load_preset('fast')
rows = []
for prepared in prepare(MODEL, n, seed, 512, 'wild'):
    face = match_face(prepared, MODEL)
    if face is None:
        continue
    masks = case_masks(MODEL, prepared, face, 'pipeline', preset)
    x0, y0, x1, y1 = masks.region
    h, w = masks.labels.shape
    crop = FitCrop(float(x0), float(y0), float(max(h, w)), int(max(h, w)))
    truth = torch.as_tensor(prepared.rendered.camera_vertices, dtype=torch.float32)[None]
    with torch.no_grad():
        tl = rendered_part_labels(MODEL, truth, case_K(prepared.case).float(), crop)[:h, :w]
    rgb = prepared.rendered.image[y0:y1, x0:x1]
    t = time.perf_counter()
    ref = refine(rgb, masks.labels, face.inter_ocular, **kw)
    dt = time.perf_counter() - t
    row = {'index': prepared.case.index, 's': dt, 'io': face.inter_ocular}
    for name, lab in (('lm', masks.labels), ('ref', ref)):
        row[name] = {}
        for k, part in enumerate(PART_NAMES):
            if part in ('left_brow', 'right_brow', 'nose', 'skin'):
                continue
            a, b = lab == k + 1, tl == k + 1
            if b.sum() == 0 and a.sum() == 0:
                continue
            row[name][part] = float((a & b).sum() / max((a | b).sum(), 1))
    rows.append(row)
    print(json.dumps(row), flush=True)
for part in ('left_eye', 'right_eye', 'upper_lip', 'lower_lip'):
    both = [r for r in rows if part in r['lm'] and part in r['ref']]
    d = np.array([r['ref'][part] - r['lm'][part] for r in both])
    print(f"{part:10s} lm {np.median([r['lm'][part] for r in both]):.3f} ref {np.median([r['ref'][part] for r in both]):.3f} "
          f"paired {np.median(d):+.3f} mean {d.mean():+.3f} better {(d>0).sum()}/{len(d)}")
print('seconds median', np.median([r['s'] for r in rows]))
