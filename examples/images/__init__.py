"""Installed as the package ``facefit_examples``: the example photos (licences in LICENSES.md here).

They are installed because the wild benchmark cuts its photo backgrounds from them; a wheel install must
draw the same renders as a checkout.
"""
