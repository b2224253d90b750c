"""Renderer benchmark: forward + backward time of rasterize + interpolate + SH shading of the ICT face.

``facefit bench render -o OUT`` (or ``python -m fitter.bench.render_bench -o OUT``) writes OUT/render.json::

    {"device": "cpu", "fwd_bwd_ms": {"256": ..., "512": ..., "256x8": ...}, "fwd_ms": {...}, ...}

All times are medians over ``repeats`` runs after a warm-up. One run: vertices (requires_grad) -> rasterize
(built-in or pytorch3d visibility + torch barycentrics) -> vertex normals -> interpolate normals and
per-vertex albedo -> SH shading -> image -> L2 loss against a fixed target -> backward to the vertices,
albedo and SH coefficients. The face (ICT "face" region, ~9.4k vertices / ~18.5k triangles) is framed to
fill the image like a face crop (focal 1500 px per 512 px, 60 cm away); the batch of 8 uses 8 head poses.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from fitter.camera import intrinsics, model_to_camera
from fitter.model import load_ict
from fitter.render import (
    SH_GREY,
    interpolate,
    pixel_normals,
    rasterize,
    resolve_backend,
    sh_shading,
)

CONFIGS = {"256": (256, 1), "512": (512, 1), "256x8": (256, 8)}


def _scene(size: int, frames: int, device: str, dtype=torch.float32):

    model = load_ict()
    topo = model.topology
    tris = torch.as_tensor(topo.triangles[topo.triangles_in(topo.region("face"))], device=device)
    gen = torch.Generator().manual_seed(0)
    rot = torch.zeros(frames, 3)
    if frames > 1:
        rot = (torch.rand(frames, 3, generator=gen) - 0.5) * torch.tensor([0.3, 0.6, 0.1])
    trans = torch.tensor([[0.0, 0.0, 60.0]]).expand(frames, 3)
    verts = model_to_camera(model.mean[None].expand(frames, -1, -1), rot, trans).to(device, dtype)
    K = intrinsics(torch.full((frames,), 1500.0 * size / 512), torch.full((frames, 2), size / 2.0))
    albedo = (0.5 + 0.3 * torch.rand(model.num_vertices, 3, generator=gen)).to(device, dtype)
    target = torch.rand(frames, size, size, 3, generator=gen).to(device, dtype)
    return verts, tris, K.to(device, dtype), albedo, target


def _step(verts, tris, K, albedo, sh, target, backend, backward=True):

    v = verts.detach().requires_grad_(backward)
    a = albedo.detach().requires_grad_(backward)
    s = sh.detach().requires_grad_(backward)
    frags = rasterize(v, tris, K, target.shape[1:3], backend=backend)
    normals = pixel_normals(frags, v, tris)
    image = interpolate(frags, a) * sh_shading(normals, s)
    loss = (image - target).square().mean()
    if backward:
        loss.backward()
    return frags


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn, device: str, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def _loadavg() -> float | None:
    """1-minute load average (other processes on a shared machine inflate the timings)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def cold_jit_seconds() -> float | None:
    """Time to compile the numba kernels from scratch (fresh NUMBA_CACHE_DIR, separate process)."""
    code = (
        "import time, torch; t=time.perf_counter(); from fitter.render import rasterize, soft_mask;"
        "v=torch.tensor([[[0.,0.,5.],[1.,0.,5.],[0.,1.,5.]]]); K=torch.tensor([[10.,0,8],[0,10.,8],[0,0,1]]);"
        "f=rasterize(v, torch.tensor([[0,1,2]]), K, (16,16), backend='builtin'); soft_mask(f);"
        "print(time.perf_counter()-t)"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        try:
            res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
            return float(res.stdout.strip().splitlines()[-1])
        except Exception:  # noqa: BLE001 - best effort, reported as null
            return None


def compare_backends(device: str = "cuda", size: int = 512) -> dict:
    """Pixel agreement of the pytorch3d and built-in backends on the ICT face (needs pytorch3d + CUDA).

    Returns the fraction of pixels with the same triangle id, and the largest barycentric / depth
    differences where they agree. Differences are expected only where a pixel centre lies on a shared edge.
    """

    verts, tris, K, _, _ = _scene(size, 4, device)
    ours = rasterize(verts, tris, K, size, backend="builtin")
    theirs = rasterize(verts, tris, K, size, backend="pytorch3d")
    same = ours.triangle_id == theirs.triangle_id
    both = same & ours.mask
    return {
        "size": size,
        "frames": 4,
        "same_triangle_fraction": float(same.float().mean()),
        "mask_disagreement_pixels": int((ours.mask != theirs.mask).sum()),
        "max_bary_diff": float((ours.bary - theirs.bary).abs()[both].max()) if both.any() else 0.0,
        "max_depth_diff": float((ours.depth - theirs.depth).abs()[both].max()) if both.any() else 0.0,
    }


def run_render_bench(
    out_dir: Path, device: str = "cpu", repeats: int = 15, backend: str = "auto", measure_jit: bool = True
) -> dict:
    """Run the benchmark, write ``out_dir/render.json`` and return its content (times in ms, medians)."""
    import numba


    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = resolve_backend(backend, torch.device(device))
    t0 = time.perf_counter()
    scenes = {name: _scene(size, frames, device) for name, (size, frames) in CONFIGS.items()}
    first = scenes["256"]
    sh = SH_GREY.to(device)
    t1 = time.perf_counter()
    _step(*first[:4], sh, first[4], resolved)
    first_call_s = time.perf_counter() - t1
    setup_s = t1 - t0

    result = {
        "device": str(torch.device(device)) if not device.startswith("cuda") else torch.cuda.get_device_name(device),
        "fwd_bwd_ms": {},
        "fwd_ms": {},
        "fwd_bwd_ms_min": {},
        "covered_pixels": {},
        "backend": resolved,
        "repeats": repeats,
        "triangles": int(first[1].shape[0]),
        "vertices": int(first[0].shape[1]),
        "first_call_s": round(first_call_s, 3),
        "setup_s": round(setup_s, 3),
        "cold_jit_s": None,
        "threads": {"torch": torch.get_num_threads(), "numba": numba.get_num_threads()},
        "versions": {"torch": torch.__version__, "numba": numba.__version__, "python": platform.python_version()},
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "loadavg_1min_before": _loadavg(),
    }
    for name, (verts, tris, K, albedo, target) in scenes.items():
        _step(verts, tris, K, albedo, sh, target, resolved)  # warm-up
        holder = {}

        def fwd_bwd():
            holder["frags"] = _step(verts, tris, K, albedo, sh, target, resolved)

        def fwd():
            with torch.no_grad():
                _step(verts, tris, K, albedo, sh, target, resolved, backward=False)

        times = _time(fwd_bwd, device, repeats)
        result["fwd_bwd_ms"][name] = round(statistics.median(times), 2)
        result["fwd_bwd_ms_min"][name] = round(min(times), 2)
        result["fwd_ms"][name] = round(statistics.median(_time(fwd, device, repeats)), 2)
        result["covered_pixels"][name] = holder["frags"].num_covered
    result["loadavg_1min_after"] = _loadavg()
    if measure_jit and resolved == "builtin":
        result["cold_jit_s"] = cold_jit_seconds()
    if resolved == "pytorch3d":
        result["pytorch3d_agreement"] = compare_backends(device)
    (out_dir / "render.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("."), help="output folder for render.json")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--renderer", default="auto", choices=["auto", "builtin", "pytorch3d"])
    parser.add_argument("--no-jit", action="store_true", help="skip the cold-compile measurement")
    args = parser.parse_args(argv)
    result = run_render_bench(args.out, args.device, args.repeats, args.renderer, not args.no_jit)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
