"""NPLR / DPLR forms and the S4D diagonal initialisers."""

import math

import pytest
import torch

from ssmkit.hippo import diag_init, dplr, nplr, rank_correction, transition
from ssmkit.hippo.nplr import nplr_reconstruct

MEASURES = ["legs", "legt", "lagt", "fout"]


def test_legs_normal_part_is_minus_half_identity_plus_skew():
    A, _ = transition("legs", 8)
    P = rank_correction("legs", 8)
    assert P.shape == (1, 8) and P.dtype == torch.float64
    S = A + P.T @ P + 0.5 * torch.eye(8, dtype=torch.float64)
    assert torch.allclose(S, -S.T, atol=1e-14)
    assert S.abs().max() > 1  # a real skew part, not zero


@pytest.mark.parametrize("measure", ["legt", "lagt", "fout"])
def test_normal_part_is_skew(measure):
    A, _ = transition(measure, 16)
    P = rank_correction(measure, 16)
    AN = A + P.T @ P
    assert torch.allclose(AN, -AN.T, atol=1e-14)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("N", [8, 64])
def test_nplr_reconstructs_A_and_B(measure, N):
    Lambda, P, B, V = nplr(measure, N)
    rank = 2 if measure == "legt" else 1
    assert Lambda.shape == (N // 2,) and P.shape == (rank, N // 2) and B.shape == (N // 2,) and V.shape == (N, N // 2)
    assert all(x.dtype == torch.complex128 for x in (Lambda, P, B, V))
    A0, B0 = transition(measure, N)
    A, Bre = nplr_reconstruct(Lambda, P, B, V)
    assert (A - A0).norm() / A0.norm() <= 1e-6
    assert (Bre - B0).norm() / B0.norm() <= 1e-6
    # in fact float64 reaches ~1e-14; keep a tighter bound so a regression shows
    assert (A - A0).norm() / A0.norm() <= 1e-12


@pytest.mark.parametrize("measure", MEASURES)
def test_nplr_basis_and_order(measure):
    N = 32
    Lambda, _, _, V = nplr(measure, N)
    V_full = torch.cat([V, V.conj()], dim=-1)
    assert torch.allclose(V_full.conj().T @ V_full, torch.eye(N, dtype=torch.complex128), atol=1e-12)
    assert torch.all(Lambda.imag <= 1e-12)
    assert torch.all(Lambda.imag[1:] >= Lambda.imag[:-1])  # sorted by imaginary part
    c = -0.5 if measure == "legs" else 0.0
    assert torch.allclose(Lambda.real, torch.full((N // 2,), c, dtype=torch.float64), atol=1e-12)
    # Lambda and conj(Lambda) are the eigenvalues of the normal part A + P^T P
    A, _ = transition(measure, N)
    P = rank_correction(measure, N)
    ev = torch.linalg.eigvals(A + P.T @ P)
    got = torch.cat([Lambda, Lambda.conj()])
    assert torch.allclose(torch.sort(ev.imag).values, torch.sort(got.imag).values, atol=1e-8)


def test_extra_rank_is_zero_padding():
    Lambda, P, B, V = nplr("legs", 16, rank=3)
    assert P.shape == (3, 8) and torch.all(P[1:] == 0)
    A, _ = nplr_reconstruct(Lambda, P, B, V)
    assert torch.allclose(A, transition("legs", 16)[0], atol=1e-11)


@pytest.mark.parametrize("measure", MEASURES)
def test_dplr_is_nplr_without_V(measure):
    got = dplr(measure, 16)
    want = nplr(measure, 16)[:3]
    assert all(torch.equal(x, y) for x, y in zip(got, want, strict=True))


def test_dplr_kernel_matches_dense_kernel():
    # Bilinear-discretised kernel of the DPLR system (full conjugate expansion) == dense kernel of the HiPPO A
    from ssmkit.hippo import discretize

    N, dt, L = 16, 0.05, 20
    A, B = transition("legs", N)
    Lambda, P, Bt, V = nplr("legs", N)
    C = torch.randn(N, dtype=torch.float64)
    Ab, Bb = discretize(A, B, dt, "bilinear")
    L_full = torch.cat([Lambda, Lambda.conj()])
    P_full = torch.cat([P, P.conj()], dim=-1)
    A_dplr = torch.diag(L_full) - P_full.T @ P_full.conj()  # (N, N) complex, in the eigenbasis
    V_full = torch.cat([V, V.conj()], dim=-1)
    Ab_c, Bb_c = discretize(A_dplr, torch.cat([Bt, Bt.conj()]), dt, "bilinear")
    C_c = C.to(torch.complex128) @ V_full
    x, xc = Bb, Bb_c
    for _ in range(L):
        assert abs((C_c @ xc).real - C @ x) < 1e-10 * max(1.0, abs(C @ x).item())
        x, xc = Ab @ x, Ab_c @ xc


def test_diag_init_values():
    N = 16
    n = torch.arange(N // 2, dtype=torch.float64)
    Lambda, B = diag_init("inv", N)
    assert Lambda.shape == B.shape == (N // 2,) and Lambda.dtype == B.dtype == torch.complex128
    assert torch.allclose(Lambda.real, torch.full_like(n, -0.5))
    assert torch.allclose(Lambda.imag, N / math.pi * (N / (2 * n + 1) - 1))
    assert torch.all(B == 1)
    Lambda, B = diag_init("lin", N)
    assert torch.allclose(Lambda, torch.complex(torch.full_like(n, -0.5), math.pi * n)) and torch.all(B == 1)
    Lambda, B = diag_init("real", N)  # N real modes
    assert Lambda.shape == B.shape == (N,)
    assert torch.equal(Lambda.real, -(torch.arange(N, dtype=torch.float64) + 1)) and torch.all(Lambda.imag == 0)
    assert diag_init("real", 5)[0].shape == (5,)
    Lambda, B = diag_init("legs", N)
    L2, _, B2, _ = nplr("legs", N)
    assert torch.equal(Lambda, L2) and torch.equal(B, B2)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(diag_init("rand", N, generator=g1)[0], diag_init("rand", N, generator=g2)[0])
    assert torch.all(diag_init("rand", N)[0].real == -0.5)


def test_bad_input():
    with pytest.raises(ValueError, match="measure must be one of legs, legt, lagt, fout"):
        nplr("lmu", 8)
    with pytest.raises(ValueError, match="N must be even"):
        nplr("legs", 7)
    with pytest.raises(ValueError, match="N must be an integer >= 1"):
        dplr("legs", 0)
    with pytest.raises(ValueError, match="rank must be an integer >= 2 for 'legt'"):
        nplr("legt", 8, rank=1)
    with pytest.raises(ValueError, match="rank must be an integer >= 1"):
        rank_correction("legs", 8, rank=0)
    with pytest.raises(ValueError, match="init must be one of legs, inv, lin, real, rand"):
        diag_init("hippo", 8)
    with pytest.raises(ValueError, match="N must be even"):
        diag_init("inv", 9)
