"""How well a fit agrees with the image evidence: per-part IoU against the part masks (quality signals for
reports and for deciding whether a stage helped; not energies)."""
from __future__ import annotations

import torch

from ..crop import FitCrop
from ..model.morphable import MorphableModel
from ..observe.segmentation import PART_NAMES, PartMasks
from ..render import rasterize, render_labels
from ..scene import Scene


@torch.no_grad()
def part_ious(model: MorphableModel, scene: Scene, masks: PartMasks, crop: FitCrop, frame: int = 0) -> dict[str, float]:
    """IoU per part between the rendered part labels of the fit (one frame) and the masks, inside the crop."""
    topo = model.topology
    cam = scene.camera_vertices()[frame : frame + 1]
    frags = rasterize(cam, topo.triangles, crop.K(scene.K()[frame : frame + 1]), (crop.size, crop.size))
    rendered = render_labels(frags, topo.vertex_labels["parts"], len(PART_NAMES) + 1, soft=False)[0].cpu().numpy()
    out = {}
    origin = (float(masks.region[0]), float(masks.region[1]))
    for k, part in enumerate(PART_NAMES):
        target = crop.mask(masks.mask(part), origin)
        if target.sum() == 0:
            continue
        pred = rendered == k + 1
        out[part] = float((target & pred).sum() / max((target | pred).sum(), 1))
    return out
