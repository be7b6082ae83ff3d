"""Numerical primitives, each with a plain reference implementation beside its fast path."""
