"""The perceptual shape critic: a network that scores how well a grey shaded render of a face geometry agrees
with the photo (docs/critic.md).

``view`` (what it sees), ``network`` (the CNN), ``weights`` (files and cards), ``pool`` (cached wild training
photos), ``negatives`` and ``align`` (wrong geometries and crops), ``pairs`` and ``train`` (training). The
energy term is fitter.energy.critic; what needs the fitter (mined negatives, the eval) is fitter.bench.critic.
"""
