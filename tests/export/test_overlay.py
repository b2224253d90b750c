"""make_overlay (fitter.export.face): the fitted mesh drawn over the photo, on the device the fit ran on (a CUDA
fit once failed here: the crop scale was a CPU tensor multiplied into CUDA intrinsics)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from fitter.export.face import make_overlay
from fitter.optimize.fit import fit_face
from fitter.optimize.presets import load_preset
from synthetic_faces import ground_truth, observe

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                reason="no CUDA device"))]


@pytest.mark.parametrize("device", DEVICES)
def test_overlay_on_the_fit_device(ict_random_embedding, device):
    face = observe(ict_random_embedding, ground_truth(ict_random_embedding, yaw=0.2), noise_px=0.5)  # on the CPU
    model = copy.copy(ict_random_embedding).to(device)  # .to moves in place: leave the shared fixture alone
    preset = load_preset("fast")
    preset["stages"] = [dict(s, iterations=3, rounds=1) for s in preset["stages"]]
    fit = fit_face(model, face, (480, 640), preset)
    assert fit.state.rotation.device.type == device
    photo = np.full((480, 640, 3), 90, np.uint8)
    out = make_overlay(model, fit, photo)
    assert out.shape[2] == 3 and out.shape[0] * 640 == out.shape[1] * 480  # the photo's aspect, maybe downscaled
    assert np.abs(out.astype(int) - 90).max() > 40  # the mesh is drawn over the grey photo
