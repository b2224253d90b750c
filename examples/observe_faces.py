"""Observe faces in images and draw them: a small tour of fitter.io and fitter.observe.

    python examples/observe_faces.py examples/images --out /tmp/overlays
    python examples/observe_faces.py 'photos/*.jpg' --landmarks fan --largest
    python examples/observe_faces.py clip.mp4 --every 25

Prints, per image, the faces found and the time taken; with --out writes each image with its landmarks
(green: weight 1, red: outside the image / weight 0) and face boxes drawn.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def draw(rgb: np.ndarray, obs) -> np.ndarray:
    import cv2

    out = np.ascontiguousarray(rgb[:, :, ::-1])
    h, w = out.shape[:2]
    r = max(1, round(max(h, w) / 700))
    for face in obs.faces:
        for (x, y), wt in zip(face.landmarks, face.landmark_weights):
            if 0 <= x < w and 0 <= y < h:
                cv2.circle(out, (int(x), int(y)), r, (0, 220, 0) if wt > 0.5 else (0, 0, 255), -1)
        x0, y0, x1, y1 = face.bbox.round().astype(int)
        cv2.rectangle(out, (x0, y0), (x1, y1), (255, 128, 0), r)
    return out


def main(argv=None) -> int:
    from fitter.io import ImageError, discover_inputs, load_image, read_video_frames
    from fitter.observe import MissingWeightsError, observe_image

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="image files, folders, glob patterns or videos")
    ap.add_argument("--landmarks", choices=["mediapipe", "fan"], default="mediapipe")
    ap.add_argument("--largest", action="store_true", help="keep only the biggest face")
    ap.add_argument("--recursive", action="store_true")
    ap.add_argument("--no-tiles", action="store_true", help="whole-image detection only")
    ap.add_argument("--every", type=int, default=25, help="video: observe every N-th frame")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--out", type=Path, help="folder for overlay images")
    args = ap.parse_args(argv)

    try:
        inputs = discover_inputs(args.inputs, recursive=args.recursive)
    except ImageError as exc:
        print(exc, file=sys.stderr)
        return 2
    settings = {"search": "none"} if args.no_tiles else {}

    def frames():
        for path in inputs.images:
            try:
                yield load_image(path)
            except ImageError as exc:
                print(f"skipped: {exc}", file=sys.stderr)
        for path in inputs.videos:
            yield from read_video_frames(path, every=args.every)

    total = 0.0
    for img in frames():
        t = time.perf_counter()
        try:
            obs = observe_image(img, detector=args.landmarks, largest=args.largest, cache=not args.no_cache,
                                **settings)
        except MissingWeightsError as exc:
            print(exc, file=sys.stderr)
            return 2
        dt = time.perf_counter() - t
        total += dt
        sizes = [int(max(f.bbox[2] - f.bbox[0], f.bbox[3] - f.bbox[1])) for f in obs.faces]
        print(f"{img.source}: {img.width}x{img.height}, {len(obs.faces)} face(s) {sizes} px, {dt:.3f} s")
        for w in obs.warnings:
            print(f"  warning: {w}")
        if args.out:
            import cv2

            args.out.mkdir(parents=True, exist_ok=True)
            name = Path(img.path).stem + ("" if img.frame_index is None else f"_f{img.frame_index:05d}")
            cv2.imwrite(str(args.out / f"{name}.jpg"), draw(img.rgb, obs))
    print(f"total {total:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
