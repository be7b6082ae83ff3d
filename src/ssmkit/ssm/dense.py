"""Convolution kernel of a dense state-space model (LSSL, Gu et al., NeurIPS 2021, Sec. 3-4).

Discretise x' = A x + B u with step Δ (Ā, B̄ = `ssmkit.hippo.discretize(A, B, Δ, disc)`) and unroll y = C x:

    K[l] = C Ā^l B̄,     l = 0..L-1.

Computed by the Krylov doubling of `ssmkit.ops.krylov` (powers of Ā by repeated squaring, the LSSL paper's
"Krylov function"), factored so that no (H, N, L) Krylov matrix is formed: O(N √L) memory per channel.

Accuracy (float64, tests/ssm/test_dense.py, against an L-step loop on independently discretised Ā, B̄): ~1e-14 relative
for the HiPPO measures with every stable discretisation. A growing kernel (forward Euler is unstable for LegT at
Δ = 0.1) loses more: 2e-10 relative at L = 1000 there. float32: ~3e-6 relative (LegS, N = 64, L = 4096).
"""

from __future__ import annotations

from torch import Tensor

from ssmkit.hippo import discretize
from ssmkit.ops.krylov import krylov

DISCRETIZATIONS = ("euler", "backward_euler", "bilinear", "zoh")


def dense_kernel(
    A: Tensor, B: Tensor, C: Tensor, dt: Tensor, L: int, disc: str = "bilinear", *, impl: str = "auto"
) -> Tensor:
    """K (H, L), K[l] = C Ā^l B̄.  A real (H, N, N); B, C (H, N); dt (H,) > 0; L >= 1;
    disc in {"euler", "backward_euler", "bilinear", "zoh"}. ``impl`` is passed to `krylov` ("reference": L-step loop).
    """
    _check(A, B, C, dt, L, disc)
    dA, dB = dense_discrete(A, B, dt, disc)  # (H, N, N), (H, N)
    return krylov(L, dA, dB, C.to(dA.dtype), impl=impl)  # (H, L)


def dense_discrete(A: Tensor, B: Tensor, dt: Tensor, disc: str = "bilinear") -> tuple[Tensor, Tensor]:
    """(Ā (H, N, N), B̄ (H, N)) for stepping: x_k = Ā x_{k-1} + B̄ u_k, y_k = C x_k."""
    if disc not in DISCRETIZATIONS:
        raise ValueError(f"dense_discrete: disc must be one of {DISCRETIZATIONS}, got {disc!r}")
    return discretize(A, B, dt, disc, validate=False)


def _check(A, B, C, dt, L, disc):
    if disc not in DISCRETIZATIONS:
        raise ValueError(f"dense_kernel: disc must be one of {DISCRETIZATIONS}, got {disc!r}")
    if not isinstance(L, int) or isinstance(L, bool) or L < 1:
        raise ValueError(f"dense_kernel: L must be an int >= 1, got {L!r}")
    for name, t in (("A", A), ("B", B), ("C", C), ("dt", dt)):
        if not isinstance(t, Tensor):
            raise TypeError(f"dense_kernel: {name} must be a torch.Tensor, got {type(t).__name__}")
    if A.dim() != 3 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"dense_kernel: A must have shape (H, N, N), got {tuple(A.shape)}")
    H, N = A.shape[0], A.shape[-1]
    for name, t in (("B", B), ("C", C)):
        if t.shape != (H, N):
            raise ValueError(
                f"dense_kernel: {name} must have shape (H, N) = ({H}, {N}) to match A, got {tuple(t.shape)}"
            )
    if dt.shape != (H,) or dt.is_complex():
        raise ValueError(f"dense_kernel: dt must be real of shape (H,) = ({H},), got {tuple(dt.shape)}")
