"""ssmkit.ops.scan: every implementation == a float64 loop (values, gradients); stability at |a| -> 1 and |a| -> 0."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from ssmkit.ops import scan
from ssmkit.ops.scan import IMPLS, _auto_impl, chunk_size

FAST = [i for i in IMPLS if i != "loop"]
WIDE = {torch.float32: torch.float64, torch.float64: torch.float64, torch.complex64: torch.complex128}
WIDE[torch.complex128] = torch.complex128
TOL = {torch.float32: 1e-5, torch.complex64: 1e-5, torch.float64: 1e-10, torch.complex128: 1e-10}


def random_a(shape, dtype, g, r_min=0.5, r_max=0.99):
    """|a| uniform in [r_min, r_max]; a random phase when complex, a random sign when real."""
    r = r_min + (r_max - r_min) * torch.rand(shape, generator=g, dtype=torch.float64)
    if dtype.is_complex:
        a = torch.polar(r, 2 * math.pi * torch.rand(shape, generator=g, dtype=torch.float64))
    else:
        a = r * torch.where(torch.rand(shape, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0)
    return a.to(dtype)


def rel_err(x, ref):
    return ((x.to(ref.dtype) - ref).abs().max() / ref.abs().max()).item()


def a_shapes(B, L, N):
    """time-varying, time-varying shared over the batch, and the time-invariant broadcasts."""
    return [(B, L, N), (1, L, N), (N,), (1, 1, N), (B, 1, N)]


@pytest.mark.parametrize("impl", FAST)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.complex128])
@pytest.mark.parametrize("L", [1, 2, 7, 64, 333])
def test_matches_float64_loop(impl, dtype, L):
    g = torch.Generator().manual_seed(L)
    B, N = 3, 5
    for shape in a_shapes(B, L, N):
        if impl == "fft" and len(shape) == 3 and shape[1] != 1:
            continue
        a = random_a(shape, dtype, g)
        b = torch.randn(B, L, N, generator=g, dtype=WIDE[dtype]).to(dtype)
        for h0 in (None, torch.randn(B, N, generator=g, dtype=WIDE[dtype]).to(dtype)):
            h0_wide = None if h0 is None else h0.to(WIDE[dtype])
            ref = scan(a.to(WIDE[dtype]), b.to(WIDE[dtype]), h0_wide, impl="loop")
            h = scan(a, b, h0, impl=impl)
            assert h.shape == (B, L, N) and h.dtype == dtype
            assert rel_err(h, ref) <= TOL[dtype], (shape, h0 is None)


@pytest.mark.parametrize("impl", FAST)
def test_real_a_complex_b_promotes(impl):
    g = torch.Generator().manual_seed(0)
    a = random_a((4,), torch.float64, g)
    b = torch.randn(2, 50, 4, generator=g, dtype=torch.complex128)
    h = scan(a, b, impl=impl)
    assert h.dtype == torch.complex128
    assert rel_err(h, scan(a, b, impl="loop")) <= 1e-10


@pytest.mark.parametrize("impl", ["sequential", "chunked", "parallel"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("shape", [(2, 21, 2), (1, 21, 2), (2,), (2, 1, 2)], ids=["varying", "shared", "vec", "per-b"])
def test_gradcheck(impl, dtype, shape):
    """L = 21: two chunks of 8 plus 5 leftover steps for the chunked scan; an odd length for the parallel one."""
    g = torch.Generator().manual_seed(1)
    a = random_a(shape, dtype, g).requires_grad_()
    b = torch.randn(2, 21, 2, generator=g, dtype=dtype, requires_grad=True)
    h0 = torch.randn(2, 2, generator=g, dtype=dtype, requires_grad=True)
    assert gradcheck(lambda a, b, h0: scan(a, b, h0, impl=impl), (a, b, h0), fast_mode=True)
    assert gradcheck(lambda a, b: scan(a, b, impl=impl), (a, b), fast_mode=True)


def test_gradcheck_fft():
    g = torch.Generator().manual_seed(2)
    a = random_a((2,), torch.complex128, g).requires_grad_()
    b = torch.randn(2, 9, 2, generator=g, dtype=torch.complex128, requires_grad=True)
    h0 = torch.randn(2, 2, generator=g, dtype=torch.complex128, requires_grad=True)
    assert gradcheck(lambda a, b, h0: scan(a, b, h0, impl="fft"), (a, b, h0), fast_mode=True)


@pytest.mark.parametrize("impl", [i for i in IMPLS if i != "loop"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_gradients_match_autograd_loop_float32(impl, dtype):
    """The custom backward (reverse scan with conj(a)) == autograd through the loop, in float32 too."""
    g = torch.Generator().manual_seed(3)
    L = 300
    shapes = [(4,)] if impl == "fft" else [(2, L, 4), (4,)]
    for shape in shapes:
        a = random_a(shape, dtype, g)
        b = torch.randn(2, L, 4, generator=g, dtype=WIDE[dtype]).to(dtype)
        h0 = torch.randn(2, 4, generator=g, dtype=WIDE[dtype]).to(dtype)
        w = torch.randn(2, L, 4, generator=g, dtype=WIDE[dtype]).to(dtype)
        grads = []
        for which, dt in ((impl, dtype), ("loop", WIDE[dtype])):
            leaves = [t.detach().to(dt).requires_grad_() for t in (a, b, h0)]
            loss = torch.real(scan(*leaves, impl=which) * w.to(dt)).sum()
            grads.append(torch.autograd.grad(loss, leaves))
        for got, ref in zip(*grads, strict=True):
            assert rel_err(got, ref) <= 1e-4  # gradients sum up to L products: a looser float32 bound than values


@pytest.mark.parametrize("impl", ["sequential", "chunked", "parallel"])
def test_backward_saves_no_log_depth_intermediates(impl):
    """Only a and h are saved: the graph holds O(B L N) memory however deep the parallel scan is."""
    a = torch.full((4,), 0.9, requires_grad=True)
    b = torch.randn(2, 256, 4, requires_grad=True)
    h = scan(a, b, impl=impl)
    saved = [t for t in h.grad_fn.saved_tensors if t is not None]
    assert sum(t.numel() for t in saved) <= h.numel() + a.numel()


# the sequential kernel takes ~10 s for 10^6 steps on this machine: run it in one of the four combinations
MILLION = [("chunked", 0), ("parallel", 0), ("chunked", 1), ("parallel", 1), ("sequential", 0)]


@pytest.mark.parametrize("impl, dtype_index", MILLION)
def test_near_unit_modulus_at_a_million_steps(impl, dtype_index):
    dtype = (torch.complex64, torch.complex128)[dtype_index]
    """|a| = 0.999999, L = 10^6, b = 1: h_t = (1 - a^(t+1)) / (1 - a) exactly; compare at every step."""
    L, N = 10**6, 2
    a = torch.polar(torch.full((N,), 0.999999, dtype=torch.float64), torch.tensor([0.0, 1e-3], dtype=torch.float64))
    b = torch.ones(1, L, N, dtype=dtype)
    a = a.to(dtype).to(torch.complex128)  # the a the scan sees (rounded to complex64 there), exactly
    h = scan(a.to(dtype), b, impl=impl)
    t = torch.arange(1, L + 1, dtype=torch.float64).unsqueeze(-1)  # (L, 1)
    exact = (1 - torch.exp(t * torch.log(a))) / (1 - a)  # (L, N), complex128
    assert torch.isfinite(torch.view_as_real(h)).all()
    # complex64: 10^6 roundings, each carried ~1/(1 - |a|) steps; with b = 1 they add up coherently, and the float32
    # loop's own error (== "sequential") is 2.1e-3 here; chunked and parallel reach ~1e-4 and below
    tol = 1e-9 if dtype == torch.complex128 else 5e-3
    assert rel_err(h[0], exact) <= tol


@pytest.mark.parametrize("impl, dtype_index", MILLION[:4])
def test_small_modulus_at_a_million_steps(impl, dtype_index):
    dtype = (torch.float32, torch.float64)[dtype_index]
    """|a| = 1e-3: h_t = Σ_j a^j b_{t-j}; five terms are exact to 1e-15. Nothing underflows into NaN."""
    L, N = 10**6, 2
    g = torch.Generator().manual_seed(4)
    a = torch.tensor([1e-3, -1e-3], dtype=torch.float64)
    b = torch.randn(1, L, N, generator=g, dtype=torch.float64)
    exact = b.clone()
    for j in range(1, 5):
        exact[:, j:] += a**j * b[:, :-j]
    h = scan(a.to(dtype), b.to(dtype), impl=impl)
    assert torch.isfinite(h).all()
    assert rel_err(h, exact) <= (1e-12 if dtype == torch.float64 else 1e-6)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("B, N", [(2, 8), (4, 128)], ids=["small", "large"])
def test_auto_agrees_with_the_loop(B, N, threads):
    """auto picks the chunked scan for small B·N and the sequential kernel for large, at 1 and 2 threads: both agree
    with the loop, gradients included."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _check_auto(B, N)
    finally:
        torch.set_num_threads(previous)


def _check_auto(B, N):
    g = torch.Generator().manual_seed(5)
    a = random_a((B, 30, N), torch.complex64, g).requires_grad_()
    b = torch.randn(B, 30, N, generator=g, dtype=torch.complex64, requires_grad=True)
    assert _auto_impl(b) == ("sequential" if B * N >= 512 else "chunked")
    h = scan(a, b)
    ref = scan(a.detach().to(torch.complex128), b.detach().to(torch.complex128), impl="loop")
    assert rel_err(h.detach(), ref) <= 1e-5
    h.real.sum().backward()
    a_ref = a.detach().to(torch.complex128).requires_grad_()
    scan(a_ref, b.detach().to(torch.complex128), impl="loop").real.sum().backward()
    assert rel_err(a.grad, a_ref.grad) <= 1e-4
    assert chunk_size(16384) in range(8, 257)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((torch.ones(3), torch.ones(2, 4, 3), None, "nope"), ValueError, "impl"),
        ((torch.ones(3), torch.ones(4, 3)), ValueError, "b must have shape"),
        ((torch.ones(2), torch.ones(2, 4, 3)), ValueError, "does not broadcast"),
        ((torch.ones(1, 1, 1, 3), torch.ones(2, 4, 3)), ValueError, "at most 3 dims"),
        ((torch.ones(3), torch.ones(2, 4, 3), torch.ones(5, 3)), ValueError, "h0"),
        ((torch.ones(3, dtype=torch.int64), torch.ones(2, 4, 3)), TypeError, "a must be"),
        (([1.0, 2.0, 3.0], torch.ones(2, 4, 3)), TypeError, "a must be a torch.Tensor"),
        ((torch.ones(2, 4, 3), torch.ones(2, 4, 3), None, "fft"), ValueError, "time-invariant"),
    ],
)
def test_bad_input_is_named(args, error, match):
    with pytest.raises(error, match=match):
        scan(*args)


@pytest.mark.parametrize("shape", [(2, 21, 2048), (2048,)], ids=["varying", "invariant"])
def test_sequential_backward_across_blocks(shape):
    """B·N = 4096 makes the sequential backward work in blocks of 8 steps: L = 21 is two full blocks and a partial one
    (the block-wise conjugation of a and the per-block dLoss/da must line up at every boundary)."""
    g = torch.Generator().manual_seed(6)
    a = random_a(shape, torch.complex128, g)
    b = torch.randn(2, 21, 2048, generator=g, dtype=torch.complex128)
    h0 = torch.randn(2, 2048, generator=g, dtype=torch.complex128)
    w = torch.randn(2, 21, 2048, generator=g, dtype=torch.complex128)
    grads = []
    for impl in ("sequential", "loop"):
        leaves = [t.clone().requires_grad_() for t in (a, b, h0)]
        torch.real(scan(*leaves, impl=impl) * w).sum().backward()
        grads.append([t.grad for t in leaves])
    for got, ref in zip(*grads, strict=True):
        assert rel_err(got, ref) <= 1e-10


@pytest.mark.parametrize("impl", ["sequential", "chunked", "parallel"])
def test_large_outputs_are_ordinary_tensors(impl):
    """Outputs of 4 MiB and more come from numpy's huge-page memory (scan._empty): same values and gradients, and
    gradients accumulate over two backward passes like any other tensor's."""
    g = torch.Generator().manual_seed(7)
    a = random_a((2, 2048, 256), torch.complex64, g).requires_grad_()
    b = torch.randn(2, 2048, 256, generator=g, dtype=torch.complex64, requires_grad=True)
    h = scan(a, b, impl=impl)
    assert not h.untyped_storage().resizable()  # the numpy-backed buffer, i.e. the fast allocation was taken
    ref = scan(a.detach().to(torch.complex128), b.detach().to(torch.complex128), impl="loop")
    assert rel_err(h.detach(), ref) <= 1e-5
    for _ in range(2):
        scan(a, b, impl=impl).real.sum().backward()
    a_ref = a.detach().to(torch.complex128).requires_grad_()
    scan(a_ref, b.detach().to(torch.complex128), impl="loop").real.sum().backward()
    assert rel_err(a.grad, 2 * a_ref.grad) <= 1e-4
