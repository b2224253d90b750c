"""Which way is an image up? Records the vote of every view the way-up check can look at (the upright pass's
largest face; the views turned 1, 3 and 2 quarters, each plain, else inside the grey border) for 125 images
(the photos of shared/data/images, every 10th frame of the GRID clips, wild renders 0-49 of seeds 0 and 2), each
turned 0-3 quarters; then replays decision rules on those votes (the rule shipped in
fitter.observe.mediapipe_backend._way_up is `confirm`). Votes are cached in $FACEFIT_EXP_CACHE/sideways_votes.pkl.
Prints, per rule: upright images turned (false), turned copies brought upright (right), turned another way
(wrong), left as they are (kept).
usage: sidewaysvotes.py"""
import collections
import os
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import fitter.observe.mediapipe_backend as mpb  # noqa: E402

SHARED = Path(__file__).resolve().parents[3] / "shared"
CACHE = Path(os.environ.get("FACEFIT_EXP_CACHE", Path.home() / ".cache" / "facefit" / "experiments"))


def images() -> list:
    import cv2
    from fitter.io import load_image
    from fitter.model import load_ict
    from fitter.synth.cases import render_case, sample_case

    out = [(p.name, load_image(p).rgb) for p in sorted((SHARED / "data" / "images").iterdir())]
    for clip in ("bbaf2n", "lbax4n"):
        cap = cv2.VideoCapture(str(SHARED / "data" / "videos" / f"{clip}.mpg"))
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if n % 10 == 0:
                out.append((f"{clip}:{n}", np.ascontiguousarray(frame[:, :, ::-1])))
            n += 1
    model = load_ict()
    for seed in (0, 2):
        for i in range(50):
            out.append((f"wild{seed}:{i}", render_case(model, sample_case(model, i, seed, 512, appearance="wild")).image))
    return out


def record() -> list[dict]:
    s = mpb.check_settings(dict(mpb.DEFAULTS))
    lm = mpb.get_landmarker(s["max_faces"], s["min_detection_confidence"], s["min_presence_confidence"])
    rows = []
    for name, rgb in images():
        for k in range(4):
            image = np.ascontiguousarray(np.rot90(rgb, k))
            det, faces, bordered = mpb._search(lm, image, s, True)
            own = mpb.turns_upright(mpb.face_down(faces[0].landmarks)) if faces else None
            plain, border = mpb.View(det, image.shape[1], image.shape[0]), mpb._bordered(image, s)[0]
            views = {}
            for t in (1, 3, 2):
                views[t] = None
                for seen in ((border, plain) if bordered else (plain, border)):
                    turned = np.ascontiguousarray(np.rot90(seen.pixels, t))
                    size = (seen.height, seen.width) if t % 2 else (seen.width, seen.height)
                    found = mpb._observe_region(lm, turned, np.array([0.0, 0.0, *size], np.float32))
                    if found:
                        down = mpb.face_down(max(found, key=lambda f: mpb._area(f.box)).landmarks)
                        views[t] = mpb.turns_upright(mpb.direction_back(down, t))
                        break
            rows.append(dict(name=name, k=k, right=(4 - k) % 4, own=own, views=views))
            print(name, k, "own", own, views, flush=True)
    return rows


def majority(votes: list, q: int) -> bool:
    return votes.count(q) >= 2 and votes.count(q) * 2 > len(votes)


def decide(r: dict, rule: str) -> int:
    faces = r["own"] is not None
    votes = [r["own"]] if faces else []
    for t in (1, 3) if faces else (1, 3, 2):
        if any(votes.count(v) >= 2 for v in votes):
            break
        if r["views"][t] is not None:
            votes.append(r["views"][t])
    if majority(votes, 2):
        return 2
    for q in (1, 3):
        if not majority(votes, q):
            continue
        if rule == "no_face_only" and faces:
            continue
        if rule == "confirm" and faces and r["views"][2] != q:
            continue
        return q
    return 0


def main():
    cache = CACHE / "sideways_votes.pkl"
    if cache.exists():
        rows = pickle.load(open(cache, "rb"))
    else:
        rows = record()
        CACHE.mkdir(parents=True, exist_ok=True)
        pickle.dump(rows, open(cache, "wb"))
    for rule in ("no_face_only", "majority", "confirm"):
        c = collections.Counter()
        for r in rows:
            d = decide(r, rule)
            if r["right"] == 0:
                c["false"] += d != 0
            else:
                c["right" if d == r["right"] else ("kept" if d == 0 else "wrong")] += 1
        print(f"{rule:12s} upright turned {c['false']}, turned copies: right {c['right']}, wrong {c['wrong']}, "
              f"kept {c['kept']} (of {sum(r['right'] != 0 for r in rows)})")


if __name__ == "__main__":
    main()
