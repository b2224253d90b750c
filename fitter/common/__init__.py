"""Leaves: atomic files, the one content-hash cache, colour transfer curves, image filters."""
