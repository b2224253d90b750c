"""The wild renders the detector experiments read (tiltexp.py, sidewaystruth.py), with the true landmarks: renders
0-24 of seeds 0 and 2 at 512 px, each with its true embedded points and the true eye-corner distance."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fitter.bench.synthetic import PreparedCase, true_landmarks  # noqa: E402
from fitter.synth.cases import render_case, sample_case  # noqa: E402


def wild_truths(model, seeds=(0, 2), n=25):
    """(seed, index, rendered case, true landmarks (N, 2), true eye-corner distance) of each render."""
    for seed in seeds:
        for i in range(n):
            case = sample_case(model, i, seed, 512, appearance="wild")
            rendered = render_case(model, case)
            truth = true_landmarks(model, PreparedCase(case, rendered, None, 0.0))
            yield seed, i, rendered, truth, np.linalg.norm(truth[33] - truth[263])
