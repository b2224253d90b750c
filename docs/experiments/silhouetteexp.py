"""How much the face's outline against the background tells default's photometric stages (wild seed 0, cases
0-19, 19 detected; from the cached post-PRDL states, unguarded). Behind "The outline against the background" in
docs/photometric.md; see README.md here.
usage: silhouetteexp.py NAME '{"cost": 1.0, "source": "grabcut"|"oracle", "region": "narrow_face"|"face"}'
  source "grabcut": the background the fitter reads from the photo (fitter.observe.background);
  source "oracle": every pixel outside the TRUE face skin's outline (rendered from the true geometry)."""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import MODEL, np, prdl_states, prepare_synthetic, proc_error, run, torch
import cv2
from fitter.energy import photometric
from fitter.energy.photo_target import face_triangle_mask
from fitter.observe.background import exterior
from fitter.render import rasterize
from fitter.synth.cases import sample_case

name, spec = sys.argv[1], json.loads(sys.argv[2])
TRIANGLES = torch.as_tensor(MODEL.topology.triangles)
SKIN = face_triangle_mask(MODEL)
CURRENT = {}


def oracle_background(rec, crop) -> np.ndarray:
    """Pixels of the crop outside the true face skin's outline (holes inside it are not background)."""
    case = sample_case(MODEL, int(rec['name'].replace('wild', '')), 0, 512, appearance='wild')
    K = torch.tensor([[case.focal, 0.0, 256.0], [0.0, case.focal, 256.0], [0.0, 0.0, 1.0]])[None]
    cam = torch.as_tensor(rec['truth'], dtype=torch.float32)[None]
    frags = rasterize(cam, TRIANGLES, crop.K(K), (crop.size, crop.size))
    skin = (frags.mask & SKIN[frags.triangle_id.clamp(min=0)])[0].numpy()
    outside = exterior(~skin)
    return cv2.erode(outside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # a pixel's margin at the outline


def with_oracle(ctx):
    targets = build_targets(ctx)
    for t in targets.frames:
        t._background = oracle_background(CURRENT['rec'], t.crop)
    return targets


build_targets = photometric.photo_targets
if spec.get('source') == 'oracle':
    photometric.photo_targets = with_oracle

from allexp import preset_for  # noqa: E402  (the default preset with its turn weights, as allexp runs it)
preset = preset_for({})
preset['photometric'] = dict(preset['photometric'], background_cost=float(spec.get('cost', 0.0)),
                             background_region=spec.get('region', 'narrow_face'))
recs = prepare_synthetic(20, 0, 'wild')
errors, starts = [], []
for rec, (state, _) in zip(recs, prdl_states(recs, preset, spec.get('prdl_name', 'S24'))):
    CURRENT['rec'] = rec
    final, _ = run(rec, preset, stages_from='photometric-64', start_state=state, guard=False)
    errors.append(proc_error(rec, final)); starts.append(proc_error(rec, state))
print(name, 'n', len(errors), 'post-PRDL %.3f' % np.median(starts),
      'median %.3f mean %.3f' % (np.median(errors), np.mean(errors)),
      json.dumps([round(float(e), 2) for e in errors]), flush=True)
