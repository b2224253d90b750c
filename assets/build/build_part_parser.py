"""Train facefit's own face parser (fitter/observe/seg_parser.py) on wild renders labelled by the true mesh's parts.

Two steps, both seeded (docs/segmentation.md has the figures and the timings on two CPU cores):

    python assets/build/build_part_parser.py data --seed 300 --first 0 --count 100 -o DATA/300_000.npz
    python assets/build/build_part_parser.py train DATA/*.npz --epochs 30 --seed 0 -o assets/part_parser.pt

`data` renders wild cases (`fitter.synth`, seeds apart from the benchmark's 0-2 and the error modes' 100-101),
labels each pixel with the part of the true mesh under it (`fitter.bench.masks.oracle_masks`: the model's own part
labels; an occluder over the face is class 9), and cuts ``crops`` jittered face squares from each through
:func:`parser_crop` on the true landmarks. `train` fits the U-Net with Adam and a class-balanced cross entropy,
mirrors (sides swapped), colour, blur and noise augmentations.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fitter.observe import seg_parser as sp  # noqa: E402


def make_data(seed: int, first: int, count: int, out: Path, crops: int = 2, size: int = 512) -> None:
    from fitter.bench.masks import oracle_masks
    from fitter.bench.synthetic import PreparedCase, true_landmarks
    from fitter.model import load_ict
    from fitter.synth.cases import render_case, sample_case

    model = load_ict()
    rng = np.random.default_rng([seed, first])
    images, labels, cases = [], [], []
    t0 = time.perf_counter()
    for i in range(first, first + count):
        case = sample_case(model, i, seed, size, appearance="wild")
        rendered = render_case(model, case)
        lm = true_landmarks(model, PreparedCase(case, rendered, None, 0.0, 0.0))
        oracle = oracle_masks(model, rendered, lm)
        full = oracle.labels.copy()
        full[oracle.occlusion] = sp.OCCLUDER
        for _ in range(crops):
            jitter = np.array([np.exp(rng.normal(0, 0.08)), rng.normal(0, 0.08), rng.normal(0, 0.04),
                               rng.normal(0, 0.04)])
            noisy = lm + rng.normal(0, 0.01 * np.ptp(lm[:, 0]), lm.shape)  # a detector's scatter
            affine = sp.parser_crop(noisy, jitter)
            images.append(sp.crop_image(rendered.image, affine))
            labels.append(sp.crop_image(full, affine, nearest=True))
            cases.append(i)
        if (i - first + 1) % 10 == 0:
            print(f"{i - first + 1}/{count} {time.perf_counter() - t0:.0f} s", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, images=np.stack(images), labels=np.stack(labels), cases=np.array(cases),
                        seed=seed)


def augment(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mirror (sides swapped), colour, gamma, blur, noise and JPEG on a batch of uint8 crops."""
    images = images.copy()
    labels = labels.copy()
    for b in range(len(images)):
        img = images[b].astype(np.float32) / 255.0
        if rng.random() < 0.5:
            img = img[:, ::-1]
            labels[b] = sp.MIRROR[labels[b][:, ::-1]]
        img = img ** np.exp(rng.normal(0, 0.25))
        img = img * np.exp(rng.normal(0, 0.12, 3)) * np.exp(rng.normal(0, 0.2))
        grey = img.mean(2, keepdims=True)
        img = grey + (img - grey) * np.exp(rng.normal(0, 0.3))
        if rng.random() < 0.3:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
        if rng.random() < 0.3:
            img = img + rng.normal(0, rng.uniform(0.005, 0.04), img.shape)
        img = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
        if rng.random() < 0.3:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        images[b] = img
    return images, labels


def train(files: list[Path], out: Path, epochs: int, seed: int, width: int, batch: int, lr: float,
          holdout: int) -> None:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = [np.load(f) for f in sorted(files)]
    images = np.concatenate([d["images"] for d in data])
    labels = np.concatenate([d["labels"] for d in data])
    cases = np.concatenate([d["seed"] * 100000 + d["cases"] for d in data])  # render ids, unique over seeds
    held = np.isin(cases, np.unique(cases)[-holdout:]) if holdout else np.zeros(len(cases), bool)
    tr, te = np.nonzero(~held)[0], np.nonzero(held)[0]
    counts = np.bincount(labels[tr].ravel(), minlength=sp.CLASSES).astype(np.float64)
    weight = torch.tensor((counts.sum() / np.maximum(counts, 1)) ** 0.5, dtype=torch.float32)
    weight = weight / weight.mean()
    net = sp.PartParser(width=width)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (len(tr) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    print(f"{len(tr)} training crops, {len(te)} held out; class weights {np.round(weight.numpy(), 2)}", flush=True)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(tr)
        losses = []
        for k in range(len(tr) // batch):
            idx = order[k * batch:(k + 1) * batch]
            x, y = augment(images[idx], labels[idx], rng)
            logits = net(sp.to_tensor(x))
            loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y, dtype=torch.long), weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        line = f"epoch {epoch + 1}/{epochs} loss {np.mean(losses):.4f} {time.perf_counter() - t0:.0f} s"
        if len(te) and ((epoch + 1) % 5 == 0 or epoch + 1 == epochs):
            line += " held-out IoU " + " ".join(f"{v:.3f}" for v in evaluate(net, images[te], labels[te]))
        print(line, flush=True)
        sp.save_parser(net, out, width)


@torch.no_grad()
def evaluate(net: sp.PartParser, images: np.ndarray, labels: np.ndarray) -> list[float]:
    """IoU per class 1..9 over the held-out crops (pooled)."""
    net.eval()
    pred = np.concatenate([net(sp.to_tensor(images[i:i + 64])).argmax(1).numpy() for i in range(0, len(images), 64)])
    out = []
    for c in range(1, sp.CLASSES):
        inter = ((pred == c) & (labels == c)).sum()
        union = ((pred == c) | (labels == c)).sum()
        out.append(inter / union if union else float("nan"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("--seed", type=int, default=300)
    d.add_argument("--first", type=int, default=0)
    d.add_argument("--count", type=int, default=100)
    d.add_argument("--crops", type=int, default=2)
    d.add_argument("-o", type=Path, required=True)
    t = sub.add_parser("train")
    t.add_argument("files", type=Path, nargs="+")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--width", type=int, default=16)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--holdout", type=int, default=50, help="cases (last of the data) kept out for the IoU line")
    t.add_argument("-o", type=Path, default=sp.WEIGHTS)
    a = ap.parse_args()
    if a.cmd == "data":
        make_data(a.seed, a.first, a.count, a.o, a.crops)
    else:
        train(a.files, a.o, a.epochs, a.seed, a.width, a.batch, a.lr, a.holdout)


if __name__ == "__main__":
    main()
