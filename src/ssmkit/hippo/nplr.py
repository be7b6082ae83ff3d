"""Normal plus low-rank (NPLR) form of the HiPPO matrices, and the DPLR initialiser of S4.

S4 (Gu, Goel, Re, "Efficiently Modeling Long Sequences with Structured State Spaces", ICLR 2022), Theorem 1: every
HiPPO matrix is normal plus low rank,

    A = A_N - P P^T,       A_N = A + P P^T normal,

and for legs, legt, lagt and fout A_N is a multiple of the identity plus a skew-symmetric matrix,
A_N = c I + S (c = -1/2 for LegS, 0 for the others). So A_N = V_full Lambda_full V_full^* with V_full unitary, found
in a well-conditioned way from the Hermitian matrix -i S (numerically an `eigh`; eig of the non-normal A itself would
be ill-conditioned). Its eigenvalues c + i w come in conjugate pairs with conjugate eigenvectors; we keep one of each
pair (the N/2 with Im <= 0, sorted by imaginary part ascending, as the S4 reference code does) as Lambda (N/2,) and V
(N, N/2), and express P and B in that basis: P~ = V^* P, B~ = V^* B.

The conjugate-pair expansion: with V_full = [V, conj(V)], Lambda_full = [Lambda, conj(Lambda)],
P_full = [P~, conj(P~)] (rank, N),

    A = V_full (diag(Lambda_full) - P_full^T conj(P_full)) V_full^*,    B = V_full [B~, conj(B~)] = 2 Re(V B~).

(The coupling between the two halves goes through the low-rank term; an S4 kernel that sums Cauchy terms over both
halves, as S4's Woodbury step does, is therefore exact.) Measured reconstruction error ||A_rec - A||_F / ||A||_F in
float64 at N = 64: legs 1.7e-15, legt 2.1e-15, lagt 2.0e-15, fout 2.1e-16 (5e-15 or less at N = 256);
tests/hippo/test_nplr.py asserts <= 1e-12 (the issue asks <= 1e-6).

fout: the constant slot and the dead sin(0) slot share the eigenvalue 0 of the skew part, where `eigh` returns an
arbitrary basis; we replace it by (q_1 + i q_2)/sqrt(2) over a real orthonormal basis of the null space, so that the
vector and its conjugate are orthonormal (the S4 code hard-codes (e_0 + i e_1)/sqrt(2)).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ssmkit.hippo.transition import _fourier_B, check_measure, check_state_size, transition

NPLR_MEASURES = ("legs", "legt", "lagt", "fout")
_MIN_RANK = {"legs": 1, "legt": 2, "lagt": 1, "fout": 1}


def _check_rank(measure: str, rank: int | None) -> int:
    if rank is None:
        return _MIN_RANK[measure]
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < _MIN_RANK[measure]:
        raise ValueError(f"rank must be an integer >= {_MIN_RANK[measure]} for {measure!r}; got {rank!r}")
    return rank


def rank_correction(measure: str, N: int, rank: int | None = None) -> Tensor:
    """P (rank, N) float64 with A + P^T P normal (S4 Thm. 1), A = transition(measure, N) in S4 conventions.

    legs: P_n = sqrt(n + 1/2). legt (rank >= 2): the rows sqrt((2n+1)/2) on odd n and on even n. lagt: P_n = sqrt(1/2).
    fout: P = B (the endpoint term). rank defaults to the smallest that works (2 for legt, else 1); extra rows are 0.
    """
    check_measure(measure, NPLR_MEASURES)
    check_state_size(N, even=measure == "fout")
    rank = _check_rank(measure, rank)
    n = torch.arange(N, dtype=torch.float64)
    if measure == "legs":
        P = torch.sqrt(n + 0.5)[None]  # (1, N)
    elif measure == "legt":
        r = torch.sqrt((2 * n + 1) / 2)  # halved like the S4 legt matrix
        P = torch.stack([r * (n % 2 == 1), r * (n % 2 == 0)])  # (2, N)
    elif measure == "lagt":
        P = torch.full((1, N), math.sqrt(0.5), dtype=torch.float64)
    else:  # fout
        P = _fourier_B(N)[None]
    if rank > P.shape[0]:
        P = torch.cat([P, torch.zeros(rank - P.shape[0], N, dtype=torch.float64)])
    return P


def _pair_null_space(S: Tensor, idx: Tensor) -> Tensor:
    """Unit vectors v_j = (q_2j + i q_2j+1)/sqrt(2) over a real orthonormal basis q of ker(S): v and conj(v) are then
    orthonormal, so a zero eigenvalue pair expands correctly (eigh returns an arbitrary basis there)."""
    _, s, Vh = torch.linalg.svd(S)
    Q = Vh[-len(idx) :].T  # (N, 2m) real orthonormal basis of the null space
    return (Q[:, 0::2] + 1j * Q[:, 1::2]) / math.sqrt(2)  # (N, m)


def nplr(measure: str, N: int, rank: int | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """NPLR form of HiPPO `measure` (legs, legt, lagt, fout): (Lambda, P, B, V), all complex128.

    Lambda (N/2,): one eigenvalue of each conjugate pair of A + P^T P, Im <= 0, sorted by Im ascending.
    P (rank, N/2) = V^* P, B (N/2,) = V^* B, V (N, N/2) with orthonormal columns, V^T V = 0.
    A = V_full (Lambda_full - P_full^T conj(P_full)) V_full^* in the conjugate-pair expansion (module docstring);
    relative reconstruction error ~1e-14 at N = 64. N must be even.
    """
    check_measure(measure, NPLR_MEASURES)
    check_state_size(N, even=True)
    rank = _check_rank(measure, rank)
    A, B = transition(measure, N)  # S4 conventions
    P = rank_correction(measure, N, rank)  # (rank, N)
    AN = A + P.T @ P  # (N, N) normal part = c I + S
    c = torch.diagonal(AN).mean()
    c = torch.where(c.abs() < 1e-12, torch.zeros_like(c), c)  # exactly 0 for legt, lagt, fout (rounding otherwise)
    S = AN - c * torch.eye(N, dtype=torch.float64)  # skew-symmetric
    skew_err = (S + S.T).abs().max() / S.abs().max().clamp_min(1e-300)
    if skew_err > 1e-12:  # cannot happen for the four measures; guards against a wrong rank_correction
        raise RuntimeError(f"A + P^T P - c I is not skew-symmetric for {measure!r} (relative error {skew_err:.1e})")
    w_im, V = torch.linalg.eigh(-1j * S.to(torch.complex128))  # -iS Hermitian: S V = V diag(i w_im)
    order = torch.argsort(w_im)
    w_im, V = w_im[order], V[:, order]
    Lambda = (c + 1j * w_im[: N // 2]).to(torch.complex128)  # (N/2,)
    V = V[:, : N // 2].clone()  # (N, N/2)
    zero = torch.nonzero(w_im.abs() < 1e-9 * max(1.0, w_im.abs().max().item())).flatten()
    if len(zero) > 0:  # fout: the constant and sin(0) slots share the eigenvalue c (rotation frequency 0)
        kept = zero[zero < N // 2]
        V[:, kept] = _pair_null_space(S, zero)
        Lambda[kept] = c + 0j
    Vh = V.conj().T  # (N/2, N)
    return Lambda, P.to(torch.complex128) @ Vh.T, Vh @ B.to(torch.complex128), V


def nplr_reconstruct(Lambda: Tensor, P: Tensor, B: Tensor, V: Tensor) -> tuple[Tensor, Tensor]:
    """Undo `nplr`: the real (A, B) from the conjugate-pair expansion (see the module docstring)."""
    V_full = torch.cat([V, V.conj()], dim=-1)  # (N, N)
    L_full = torch.cat([Lambda, Lambda.conj()])  # (N,)
    P_full = torch.cat([P, P.conj()], dim=-1)  # (rank, N)
    A = V_full @ (torch.diag(L_full) - P_full.T @ P_full.conj()) @ V_full.conj().T
    B_full = V_full @ torch.cat([B, B.conj()])
    return A.real, B_full.real


def dplr(measure: str, N: int, rank: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """The S4 layer initialiser: (Lambda (N/2,), P (rank, N/2), B (N/2,)), complex128, from `nplr` in the basis V.

    The S4 SSM is x' = (Lambda - P P^*) x + B u over the N/2 kept modes, with the output 2 Re(C x) (S4 Sec. 3.3).
    """
    Lambda, P, B, _ = nplr(measure, N, rank)
    return Lambda, P, B
