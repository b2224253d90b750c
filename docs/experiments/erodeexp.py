"""The photometric domain without its outer rim: skin pixels within FRAC x sqrt(face area) of the landmark-drawn
face outline are not compared (the detector's outline is the mask's least trustworthy part; the background cost
still holds the outline from outside). From the same post-PRDL states (wild seed 0, 47 faces, guarded; the states
are truthenergyexp.py's); docs/photometric.md, "How robust the photometric loss is".
usage: erodeexp.py FRAC [FRAC ...]      (about 9 minutes a value on 2 cores)"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cv2
from photexp import np
from truthenergyexp import PRESET, paired_variant
import fitter.energy.photo_target as pt

orig = pt.PhotoTarget.from_photo.__func__


def eroded(frac):
    def from_photo(cls, rgb_float, crop, masks=None, parts=("skin", "nose")):
        t = orig(cls, rgb_float, crop, masks, parts)
        if masks is None or t.face is None:
            return t
        face = t.face.astype(np.uint8)
        k = max(1, int(round(frac * np.sqrt(face.sum()))))
        inner = cv2.erode(face, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))) > 0
        t.valid = t.valid & inner
        return t
    return classmethod(from_photo)


for frac in [float(x) for x in sys.argv[1:]]:
    pt.PhotoTarget.from_photo = eroded(frac)
    paired_variant(f'erode {frac}', PRESET, f'erode{frac}')
