"""Render wild synthetic cases into the README's image grid (docs/images/wild_grid.jpg).

    python docs/build_wild_grid.py [--n 12] [--seed 0] [--size 384] [--cols 4] [-o docs/images/wild_grid.jpg]

Each tile is one case of ``facefit bench synthetic --appearance wild`` exactly as the benchmark renders it
(same seed, same index), downscaled for the grid, with its index and a few of its effects written below.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fitter.model import load_ict
from fitter.synth.cases import render_case, sample_case

SHOWN_FAMILIES = ("occluder", "framing")  # effects named under each tile (the others are on every face)
MAX_BYTES = 400_000


def caption(effects: list[dict]) -> str:
    names = [e["name"] for e in effects if e["family"] in SHOWN_FAMILIES]
    hair = next((e["params"]["style"] for e in effects if e["name"] == "hair"), None)
    return ", ".join(([f"hair: {hair}"] if hair else []) + names)


def build(n: int, seed: int, size: int, cols: int, tile: int) -> np.ndarray:
    model = load_ict()
    tiles = []
    for i in range(n):
        rendered = render_case(model, sample_case(model, i, seed, size, appearance="wild"))
        image = cv2.resize(rendered.image, (tile, tile), interpolation=cv2.INTER_AREA)
        band = np.full((18, tile, 3), 255, np.uint8)
        cv2.putText(band, f"{i}: {caption(rendered.effects)}"[:48], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.36,
                    (30, 30, 30), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([image, band], 0))
        print(f"case {i}: {caption(rendered.effects)}", flush=True)
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[k:k + cols], 1) for k in range(0, len(tiles), cols)]
    return np.concatenate(rows, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=384, help="render size of each case (pixels)")
    parser.add_argument("--tile", type=int, default=256, help="tile size in the grid (pixels)")
    parser.add_argument("--cols", type=int, default=4)
    parser.add_argument("-o", "--out", type=Path, default=Path(__file__).resolve().parent / "images" / "wild_grid.jpg")
    args = parser.parse_args()
    grid = build(args.n, args.seed, args.size, args.cols, args.tile)
    for quality in (88, 80, 70, 60, 50):  # the README's image stays small
        ok, buf = cv2.imencode(".jpg", grid[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(buf) <= MAX_BYTES:
            break
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buf.tobytes())
    print(f"{args.out}: {grid.shape[1]}x{grid.shape[0]}, {len(buf) // 1024} KB (JPEG quality {quality})")


if __name__ == "__main__":
    main()
