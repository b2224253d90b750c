"""Batch fitting, diagnostics: the application layer over the library."""
