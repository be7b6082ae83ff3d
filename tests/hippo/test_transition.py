"""Transition matrices: known entries at N = 8 for every measure, stability, bad input."""

import math

import pytest
import torch

from ssmkit.hippo import transition
from ssmkit.hippo.transition import MEASURES

N = 8
SQ = math.sqrt


def test_legs_entries():
    A, B = transition("legs", N)
    assert A.dtype == B.dtype == torch.float64 and A.shape == (N, N) and B.shape == (N,)
    assert A[0, 0] == -1 and A[3, 3] == -4 and A[7, 7] == -8
    assert A[3, 1] == pytest.approx(-SQ(7) * SQ(3))
    assert A[7, 0] == pytest.approx(-SQ(15))
    assert torch.all(torch.triu(A, 1) == 0)
    assert torch.allclose(B, torch.sqrt(2 * torch.arange(N, dtype=torch.float64) + 1))


@pytest.mark.parametrize("convention, window", [("s4", 2.0), ("paper", 1.0)])
def test_legt_entries(convention, window):
    A, B = transition("legt", N, convention=convention)
    assert A[0, 0] == pytest.approx(-1 / window)
    assert A[1, 0] == pytest.approx(-SQ(3) / window)  # n >= k: -r_n r_k
    assert A[0, 1] == pytest.approx(SQ(3) / window)  # n < k: -r_n r_k (-1)^(n-k)
    assert A[2, 5] == pytest.approx(SQ(5) * SQ(11) / window)
    assert A[2, 4] == pytest.approx(-SQ(5) * SQ(9) / window)
    assert B[3] == pytest.approx(SQ(7) / window)


@pytest.mark.parametrize("convention, diag", [("s4", -0.5), ("paper", -1.0)])
def test_lagt_entries(convention, diag):
    A, B = transition("lagt", N, beta=2.0, convention=convention)
    assert torch.all(torch.diagonal(A) == diag)
    assert A[5, 2] == -1 and A[2, 5] == 0
    assert torch.all(B == 2.0)


def test_glagt_entries():
    A, B = transition("glagt", N, alpha=0.0, beta=0.25)
    assert torch.allclose(torch.diagonal(A), torch.full((N,), -(1 + 0.25) / 2, dtype=torch.float64))
    assert A[4, 1] == pytest.approx(-1.0) and A[1, 4] == 0
    assert torch.allclose(B, torch.full((N,), 0.5, dtype=torch.float64))  # beta^(1/2)
    A, B = transition("glagt", N, alpha=0.5, beta=1.0)
    assert B[0] == pytest.approx(SQ(2 / math.pi))  # 1 / sqrt(Gamma(3/2) Gamma(1/2))
    assert A[1, 0] == pytest.approx(-SQ(2 / 3))  # -sqrt(Gamma(3/2) / Gamma(5/2))


@pytest.mark.parametrize("convention, window", [("s4", 2.0), ("paper", 1.0)])
def test_fout_entries(convention, window):
    A, B = transition("fout", N, convention=convention)
    e = torch.tensor([1, 0, SQ(2), 0, SQ(2), 0, SQ(2), 0], dtype=torch.float64)
    assert torch.allclose(B, 2 * e / window)
    omega = 2 * math.pi / window  # s4: pi m, paper: 2 pi m
    assert A[2, 3] == pytest.approx(-omega) and A[3, 2] == pytest.approx(omega)
    assert A[6, 7] == pytest.approx(-3 * omega) and A[7, 6] == pytest.approx(3 * omega)
    assert A[0, 0] == pytest.approx(-2 / window) and A[0, 4] == pytest.approx(-2 * SQ(2) / window)
    assert A[4, 4] == pytest.approx(-4 / window)
    assert torch.all(A[1] == 0) and torch.all(A[:, 1] == 0)  # the sin(0) slot is dead


def test_foud_entries():
    A, B = transition("foud", N)
    assert A[4, 5] == pytest.approx(-4 * math.pi) and A[5, 4] == pytest.approx(4 * math.pi)
    assert torch.all(torch.diagonal(A) == -0.5) and A[0, 2] == 0
    assert B[0] == 1 and B[2] == pytest.approx(SQ(2)) and B[3] == 0


def test_lmu_entries():
    A, B = transition("lmu", N)
    assert A[0, 0] == -1 and A[0, 1] == -1 and A[1, 0] == 3 and A[1, 1] == -3 and A[3, 1] == -7
    assert torch.equal(B[:4], torch.tensor([1.0, -3.0, 5.0, -7.0], dtype=torch.float64))


def test_random_and_diagonal_are_seeded():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert all(
        torch.equal(x, y)
        for x, y in zip(transition("random", N, generator=g1), transition("random", N, generator=g2), strict=True)
    )
    A, B = transition("diagonal", N)
    assert torch.equal(A, torch.diag(torch.diagonal(A))) and torch.all(torch.diagonal(A) < 0)
    assert B.shape == (N,)


@pytest.mark.parametrize("measure", ["legs", "legt", "lagt", "glagt", "foud", "lmu", "diagonal"])
@pytest.mark.parametrize("n", [8, 64])
def test_stable(measure, n):
    A, _ = transition(measure, n)
    assert torch.linalg.eigvals(A).real.max() < 0


@pytest.mark.parametrize("convention", ["s4", "paper"])
def test_fout_stable_on_its_live_state(convention):
    # fout's slot 1 is sin(0 x): identically zero, eigenvalue 0, never excited (B_1 = 0, row/column 1 zero)
    A, _ = transition("fout", 16, convention=convention)
    keep = [i for i in range(16) if i != 1]
    assert torch.linalg.eigvals(A[keep][:, keep]).real.max() < 0


def test_bad_input():
    with pytest.raises(ValueError, match="measure must be one of.*legs"):
        transition("legx", 8)
    with pytest.raises(ValueError, match="N must be an integer >= 1"):
        transition("legs", 0)
    with pytest.raises(ValueError, match="N must be an integer >= 1"):
        transition("legs", 2.0)
    with pytest.raises(ValueError, match="N must be even"):
        transition("fout", 7)
    with pytest.raises(ValueError, match="unknown keyword.*beta"):
        transition("legs", 8, beta=1.0)
    with pytest.raises(ValueError, match="convention must be one of s4, paper"):
        transition("legt", 8, convention="hippo")
    with pytest.raises(ValueError, match="alpha must lie in"):
        transition("glagt", 8, alpha=1.5)


def test_every_measure_has_a_test():
    assert set(MEASURES) == {"legs", "legt", "lagt", "glagt", "fout", "foud", "lmu", "random", "diagonal"}
