"""The perceptual shape critic (network, data synthesis, training). Empty until its issue lands."""
