"""Synthetic face photos with known geometry: the ground truth of the benchmarks and the critic's training data.

Below the critic and the application layers, so both can render faces without importing each other.
"""
