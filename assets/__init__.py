"""Installed as the package ``facefit_assets``: model data and detector bundles (see README.md here)."""
