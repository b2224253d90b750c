"""Leaves: atomic files, the one content-hash cache, colour transfer curves, image filters, declared settings,
the file-error base, UV-map look-up."""
