"""Numerical primitives, each with a plain reference implementation beside its fast path."""

from ssmkit.ops.cauchy import cauchy, cauchy_reference
from ssmkit.ops.fftconv import fftconv
from ssmkit.ops.krylov import krylov, krylov_reference, krylov_state, krylov_state_reference
from ssmkit.ops.scan import scan, scan_loop
from ssmkit.ops.vandermonde import vandermonde, vandermonde_reference

__all__ = [
    "cauchy",
    "cauchy_reference",
    "fftconv",
    "krylov",
    "krylov_reference",
    "krylov_state",
    "krylov_state_reference",
    "scan",
    "scan_loop",
    "vandermonde",
    "vandermonde_reference",
]
