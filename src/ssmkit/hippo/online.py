"""Online function approximation with HiPPO (Gu et al. 2020, Sec. 2-3): signals f (B, L) -> coefficients c (B, L, N).

Time conventions. Sample j (0-indexed) of f is taken at time t_j = (j + 1) dt (`HiPPO.times`), so after the
first sample the history is [0, dt]; c[:, j] summarises f up to t_j, and `reconstruct(c[:, j], s, t_j)` evaluates
it at times s. The signal is zero before t = 0 (state starts at 0), except for LegS with init="first" (below).

- legs: the scale-invariant LegS update with A/k, B/k at step k = j + 1 (see `legs.py`); dt only labels time.
  impl="fast" runs it in O(N) per step, impl="reference" with dense triangular solves. init="first" starts the
  state at the projection of the first sample (c_1 = f_0 e_0, as the HiPPO RNN cell does) instead of taking the
  first step from c_0 = 0; it removes most of the start-up error.
  Measured on f(t) = sin(2 pi 5 t) + 0.5 cos(2 pi 13 t), 1000 samples on [0, 1), N = 64, bilinear, reconstructed at
  the sample times from the last state: MSE 1.0e-4 (init="zero"), 9.1e-5 (init="first"). The published HiPPO code
  reports 8.5e-4 for init="zero": its state is the same, but it compares sample j with the reconstruction at the
  relative position j/(L-1) instead of at the sample's own time t_j/t_L = (j+1)/L (up to one sample off).
- legt, lagt, glagt, fout, foud, lmu: time-invariant, x' = (A x + B f) / theta with (A, B) = transition(measure, N,
  convention="paper") where a convention exists (legt window theta, lagt timescale theta, fout the exact Fourier
  projection on a window theta; glagt, foud, lmu: timescale / window theta; glagt's alpha, beta via
  `measure_kwargs`), discretised once with `discretize(method, dt)`: x_j = Ab x_{j-1} + Bb f_j. impl="fast" computes
  all steps in parallel as a causal convolution with the kernel K_l = Ab^l Bb (powers by doubling, FFT convolution);
  impl="reference" steps through time with the dense Ab.
  `step` (streaming) with impl="fast" and a GBT rule (euler, backward_euler, bilinear, gbt) costs O(N) for all six,
  never the dense O(N^2): (I - alpha dt A) c' = (I + (1 - alpha) dt A) c + dt B f with A applied and inverted through
  its structure — LagT, GLagT: diagonal plus a scaled strictly-lower all-ones matrix (`legs.lower_mult` /
  `lower_solve`); LegT: -R S R with S^{-1} tridiagonal (`legt.legt_mult` / `legt_solve`); LMU: LegT in the basis
  T = diag((-1)^n sqrt(2n+1)), A_lmu = T A_legt T^{-1} (Voelker et al. 2019); FouT, FouD: block rotation plus
  diagonal plus rank one (`fourier.fourier_mult` / `fourier_solve`). ZOH's Ab = exp(dt A) has no such structure
  (it is dense for every measure), so a ZOH step is the dense O(N^2) product.
  What each measure remembers, and how `reconstruct` reads it back, is in `reconstruct.py`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ssmkit.hippo.discretize import METHODS, discretize
from ssmkit.hippo.fourier import fourier_mult, fourier_solve
from ssmkit.hippo.legs import legs_fast, legs_reference, legs_step, legs_structure, lower_mult, lower_solve
from ssmkit.hippo.legt import legt_factors, legt_mult, legt_solve
from ssmkit.hippo.reconstruct import reconstruct
from ssmkit.hippo.transition import _fourier_B, check_measure, check_state_size, glagt_norms, transition

ONLINE_MEASURES = ("legs", "legt", "lagt", "glagt", "fout", "foud", "lmu")
_CONVENTION = ("legt", "lagt", "fout")  # measures with an S4 / paper convention: the module uses the paper's
_FOURIER = {"fout": (2 * math.pi, 0.0, 2.0), "foud": (2 * math.pi, -0.5, 0.0)}  # (omega, d, rho) of A, window 1
IMPLS = ("fast", "reference")
INITS = ("zero", "first")
_GBT_ALPHA = {"euler": 0.0, "backward_euler": 1.0, "bilinear": 0.5}


def _positive(x: float, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {x!r}")
    return float(x)


def krylov_kernel(Ab: Tensor, Bb: Tensor, L: int) -> Tensor:
    """K (L, N) with K_l = Ab^l Bb, by doubling: [K_0..K_{m-1}] -> append Ab^m [K_0..K_{m-1}]; log2(L) matmuls."""
    K = Bb[None]  # (1, N)
    P = Ab  # Ab^m, m = current length
    while K.shape[0] < L:
        K = torch.cat([K, K @ P.T], dim=0)
        P = P @ P
    return K[:L]


def causal_conv(f: Tensor, K: Tensor) -> Tensor:
    """c[b, j] = sum_{i <= j} K[j - i] f[b, i] by FFT: f (B, L), K (L, N) -> (B, L, N)."""
    L = f.shape[-1]
    n = 1 << (2 * L - 1).bit_length()
    F = torch.fft.rfft(f, n=n, dim=-1)  # (B, n/2+1)
    Kf = torch.fft.rfft(K, n=n, dim=0)  # (n/2+1, N)
    return torch.fft.irfft(F[..., None] * Kf, n=n, dim=-2)[:, :L]


class HiPPO(nn.Module):
    """Online HiPPO projection: f (B, L) (or (L,)) -> c (B, L, N) (or (L, N)). See the module docstring.

    Args: measure legs/legt/lagt/glagt/fout/foud/lmu; N state size (even for fout, foud); dt sample spacing;
    method a `discretize` method (legs: euler, backward_euler, bilinear or gbt with alpha); theta window/timescale
    (not legs); init "zero" or "first" (legs only); impl "fast" or "reference"; dtype of the matrices and the
    computation; measure_kwargs: glagt's {"alpha": in (-1, 1), "beta": > 0} (defaults 0 and 0.01, as `transition`).
    """

    def __init__(
        self,
        measure: str = "legs",
        N: int = 64,
        dt: float = 1e-3,
        method: str = "bilinear",
        *,
        theta: float = 1.0,
        alpha: float | None = None,
        init: str = "zero",
        impl: str = "fast",
        dtype: torch.dtype = torch.float64,
        measure_kwargs: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.measure = check_measure(measure, ONLINE_MEASURES)
        self.N = check_state_size(N, even=measure in ("fout", "foud"))
        self.measure_kwargs = _check_measure_kwargs(measure, measure_kwargs)
        self.dt = _positive(dt, "dt")
        self.theta = _positive(theta, "theta")
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {', '.join(IMPLS)}; got {impl!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
        if init == "first" and measure != "legs":
            raise ValueError(f"init='first' is only defined for legs; got measure {measure!r}")
        self.impl, self.init, self.method = impl, init, method
        if measure == "legs":
            if method == "gbt":
                if alpha is None or not 0 <= alpha <= 1:
                    raise ValueError(f"alpha must be a number in [0, 1] for method 'gbt'; got {alpha!r}")
                self.alpha = float(alpha)
            elif method in _GBT_ALPHA and alpha is None:
                self.alpha = _GBT_ALPHA[method]
            else:
                raise ValueError(
                    f"method for legs must be one of euler, backward_euler, bilinear, gbt (alpha only with gbt); "
                    f"got method={method!r}, alpha={alpha!r}"
                )
            A, B = transition("legs", N)
        else:
            if method not in METHODS:
                raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
            conv = {"convention": "paper"} if measure in _CONVENTION else {}
            A, B = transition(measure, N, **conv, **self.measure_kwargs)
            A, B = A / self.theta, B / self.theta
        self.register_buffer("A", A.to(dtype), persistent=False)  # (N, N) continuous
        self.register_buffer("B", B.to(dtype), persistent=False)  # (N,)
        if measure != "legs":
            Ab, Bb = discretize(A, B, self.dt, method, alpha=alpha)
            self.register_buffer("Ab", Ab.to(dtype), persistent=False)  # (N, N) discrete
            self.register_buffer("Bb", Bb.to(dtype), persistent=False)  # (N,)
            self.alpha = float(alpha) if method == "gbt" else _GBT_ALPHA.get(method)  # None for zoh
            if measure in ("legt", "lmu") and self.alpha:  # LU factors of the O(N) implicit solve
                for name, x in zip(("d", "l", "u"), legt_factors(N, self.alpha * self.dt / self.theta), strict=True):
                    self.register_buffer(f"_legt_{name}", x.to(dtype), persistent=False)
            self._register_structure(dtype)

    def _register_structure(self, dtype: torch.dtype) -> None:
        """Vectors of the O(N) structured step (see the module docstring), as buffers."""
        n = torch.arange(self.N, dtype=torch.float64)
        if self.measure == "lagt":  # A_1 = -(I + tril_strict(1 1^T))
            delta = u = v = torch.ones_like(n)
        elif self.measure == "glagt":  # A_1 = -((1 + beta)/2 I + diag(1/L) tril_strict(1 1^T) diag(L))
            norms = glagt_norms(self.N, self.measure_kwargs.get("alpha", 0.0))
            delta = torch.full_like(n, (1 + self.measure_kwargs.get("beta", 0.01)) / 2)
            u, v = 1 / norms, norms
        else:
            delta = u = v = None
        if delta is not None:  # A = A_1 / theta = -(diag(delta) + tril_strict(u v^T)) / theta
            for name, x in (("delta", delta / self.theta), ("u", u / self.theta), ("v", v)):
                self.register_buffer(f"_lower_{name}", x.to(dtype), persistent=False)
        if self.measure == "lmu":  # A_lmu = T A_legt T^{-1}
            self.register_buffer("_lmu_T", ((-1.0) ** n * torch.sqrt(2 * n + 1)).to(dtype), persistent=False)
        if self.measure in _FOURIER:
            self.register_buffer("_fourier_e", _fourier_B(self.N).to(dtype), persistent=False)

    def extra_repr(self) -> str:
        return f"measure={self.measure}, N={self.N}, dt={self.dt}, method={self.method}, theta={self.theta}"

    def times(self, L: int) -> Tensor:
        """t_j = (j + 1) dt for j < L: the time each output step refers to, (L,)."""
        return (torch.arange(L, dtype=self.A.dtype, device=self.A.device) + 1) * self.dt

    def initial_state(self, batch_size: int) -> Tensor:
        """c = 0, (batch_size, N)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
        return torch.zeros(batch_size, self.N, dtype=self.A.dtype, device=self.A.device)

    def step(self, f_j: Tensor, c: Tensor, j: int) -> Tensor:
        """One step at sample j (0-indexed): f_j (B,), c (B, N) the state after sample j-1 -> state after j."""
        if isinstance(j, bool) or not isinstance(j, int) or j < 0:
            raise ValueError(f"j must be an integer >= 0 (the 0-indexed sample); got {j!r}")
        if not isinstance(c, Tensor) or c.dim() != 2 or c.shape[-1] != self.N:
            got = tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__
            raise ValueError(f"c must be a tensor of shape (B, N) = (B, {self.N}); got {got}")
        if not isinstance(f_j, Tensor) or f_j.is_complex() or tuple(f_j.shape) != tuple(c.shape[:1]):
            got = tuple(f_j.shape) if isinstance(f_j, Tensor) else type(f_j).__name__
            raise ValueError(f"f_j must be a real tensor of shape (B,) = ({c.shape[0]},), matching c; got {got}")
        f_j = f_j.to(self.A.dtype)
        if self.measure == "legs":
            if j == 0 and self.init == "first":
                return torch.nn.functional.pad(f_j[:, None], (0, self.N - 1))
            return legs_step(c, f_j, j + 1, self.alpha, legs_structure(self.N, c.dtype, c.device))
        if self.alpha is not None and self.impl == "fast":
            return self._structured_step(f_j, c)
        return c @ self.Ab.T + f_j[:, None] * self.Bb

    def _structured_step(self, f_j: Tensor, c: Tensor) -> Tensor:
        """O(N) GBT step (I - alpha dt A) c' = (I + (1 - alpha) dt A) c + dt B f, A = A_1 / theta (module docstring)."""
        h, alpha = self.dt, self.alpha
        z = c + (1 - alpha) * h * self._mult(c) + h * f_j[:, None] * self.B
        return z if alpha == 0.0 else self._solve(z, alpha * h)

    def _mult(self, c: Tensor) -> Tensor:
        """A c in O(N), A = A_1 / theta."""
        if self.measure in ("lagt", "glagt"):
            return lower_mult(c, self._lower_delta, self._lower_u, self._lower_v)
        if self.measure == "legt":
            return legt_mult(c) / self.theta
        if self.measure == "lmu":
            return self._lmu_T * legt_mult(c / self._lmu_T) / self.theta
        omega, d, rho = _FOURIER[self.measure]
        return fourier_mult(c, omega, d, rho, self._fourier_e) / self.theta

    def _solve(self, z: Tensor, gamma: float) -> Tensor:
        """y with (I - gamma A) y = z in O(N), A = A_1 / theta, gamma > 0."""
        if self.measure in ("lagt", "glagt"):
            return lower_solve(z, gamma, self._lower_delta, self._lower_u, self._lower_v)
        factors = (self._legt_d, self._legt_l, self._legt_u) if self.measure in ("legt", "lmu") else None
        if self.measure == "legt":
            return legt_solve(z, gamma / self.theta, factors)
        if self.measure == "lmu":
            return self._lmu_T * legt_solve(z / self._lmu_T, gamma / self.theta, factors)
        omega, d, rho = _FOURIER[self.measure]
        return fourier_solve(z, gamma / self.theta, omega, d, rho, self._fourier_e)

    def forward(self, f: Tensor) -> Tensor:
        """f (B, L) or (L,) real -> c (B, L, N) or (L, N)."""
        if not isinstance(f, Tensor) or f.dim() not in (1, 2) or f.is_complex() or f.shape[-1] < 1:
            shape = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
            raise ValueError(f"f must be a real tensor of shape (B, L) or (L,) with L >= 1; got {shape}")
        squeeze = f.dim() == 1
        f = (f[None] if squeeze else f).to(self.A.dtype)
        if self.measure == "legs":
            c = self._legs(f)
        elif self.impl == "fast":
            c = causal_conv(f, krylov_kernel(self.Ab, self.Bb, f.shape[-1]))
        else:
            c = self._loop(f)
        return c[0] if squeeze else c

    def _legs(self, f: Tensor) -> Tensor:
        run = legs_fast if self.impl == "fast" else legs_reference
        if self.init == "zero":
            return run(f, self.N, self.alpha)
        c0 = torch.nn.functional.pad(f[:, :1], (0, self.N - 1))  # (B, N): projection of the constant f_0
        if f.shape[1] == 1:
            return c0[:, None]
        return torch.cat([c0[:, None], run(f[:, 1:], self.N, self.alpha, c0=c0, k0=2)], dim=1)

    def _loop(self, f: Tensor) -> Tensor:
        c = self.initial_state(f.shape[0])
        out = []
        for j in range(f.shape[1]):
            c = self.step(f[:, j], c, j)
            out.append(c)
        return torch.stack(out, dim=1)

    def reconstruct(self, c: Tensor, s: Tensor, t: float | Tensor) -> Tensor:
        """`reconstruct` with this module's measure, theta and measure_kwargs: c (..., N), s (P,), t -> (..., P)."""
        return reconstruct(c, self.measure, s, t, theta=self.theta, measure_kwargs=self.measure_kwargs)


def _check_measure_kwargs(measure: str, kwargs: dict[str, float] | None) -> dict[str, float]:
    """glagt's alpha, beta (checked by `transition`); no other measure takes any here."""
    kwargs = dict(kwargs or {})
    allowed = ("alpha", "beta") if measure == "glagt" else ()
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(
            f"measure_kwargs {unknown} are not accepted for {measure!r}; accepted: {', '.join(allowed) or 'none'}"
        )
    return {k: float(v) for k, v in kwargs.items()}
