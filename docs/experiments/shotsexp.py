"""Shot identity distances behind docs/video.md: cut clips of one person (a colour-cast second half) and of two
people (two synthetic clips, or the two GRID speakers spliced), each fitted with `facefit fit` and read back
from report.json's sequence.shots.

usage: shotsexp.py OUT [--preset fast] [--config extra.toml]"""
import argparse, json, subprocess
from pathlib import Path
import cv2
import numpy as np
from fitter.export.video_overlay import write_video
from fitter.io import open_video
from fitter.model import load_ict
from fitter.synth.clips import render_clip, sample_clip

GRID = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"
PAIRS = [(11, 12), (13, 14), (15, 16), (17, 18)]  # synthetic seeds: (person A, person B)


def cast(frames, gains):
    return [np.clip(f.astype(np.float32) * np.asarray(gains) + 8, 0, 255).astype(np.uint8) for f in frames]


def write_clips(folder: Path) -> list[Path]:
    model = load_ict()
    clips = []
    for k, (a, b) in enumerate(PAIRS):
        A, B = ([r.image for r in render_clip(model, sample_clip(model, seed=s, fps=25, duration=1.2, size=256),
                                              supersample=1)] for s in (a, b))
        write_video(folder / f"synthetic_two_{k}.mp4", A[:15] + B[:15], 25)
        write_video(folder / f"synthetic_one_{k}.mp4", A[:15] + cast(A[15:], (1.3, 0.95, 0.6)), 25)
        clips += [folder / f"synthetic_two_{k}.mp4", folder / f"synthetic_one_{k}.mp4"]
    grid = {c: [f.rgb for f in open_video(GRID / f"{c}.mpg")] for c in ("bbaf2n", "lbax4n")}
    for c, frames in grid.items():
        write_video(folder / f"grid_one_{c}.mp4", frames[:38] + cast(frames[38:], (1.35, 0.9, 0.6)), 25)
        clips.append(folder / f"grid_one_{c}.mp4")
    write_video(folder / "grid_two.mp4", grid["bbaf2n"][:38] + grid["lbax4n"][38:], 25)
    return clips + [folder / "grid_two.mp4"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--config", default=None)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for clip in write_clips(args.out):
        cmd = ["facefit", "fit", str(clip), "--preset", args.preset, "-o", str(args.out / "fits")]
        subprocess.run(cmd + (["--config", args.config] if args.config else []), capture_output=True, check=True)
        report = json.loads((args.out / "fits" / clip.stem / "report.json").read_text())
        shots = report["sequence"].get("shots", [])
        print(clip.stem, report["sequence"]["segments"], [round(s["identity_distance_mm"], 3) for s in shots],
              flush=True)


if __name__ == "__main__":
    main()
