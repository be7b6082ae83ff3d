"""The Linear Recurrent Unit: Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long Sequences".

The recurrence (Section 3 and the Appendix A code), with input u_k (H,) real and state x_k (N,) complex:

    x_k = diag(λ) x_{k-1} + γ ⊙ (B u_k)          λ, γ (N,); B = B_re + i B_im (N, H) complex
    y_k = Re(C x_k) + D ⊙ u_k                    C = C_re + i C_im (H, N) complex; D (H,) real
    λ = exp(-exp(ν_log) + i exp(θ_log))          the stable exponential parameterisation (Section 3.3): |λ| < 1 always
    γ = exp(γ_log), initialised to sqrt(1 - |λ|²) and learned (Section 3.4: keeps E|x|² = O(1) as |λ| -> 1)

Initialisation (Section 3.3, its ring-initialisation lemma, and the Appendix A code): λ uniform on the ring r_min <= |λ|
<= r_max with phase uniform in [0, max_phase]: ν = -½ log(u1 (r_max² - r_min²) + r_min²), θ = max_phase · u2 with u1, u2
~ U[0, 1) (and ν_log = log ν, θ_log = log θ); B_re, B_im ~ N(0, 1) / sqrt(2H); C_re, C_im ~ N(0, 1) / sqrt(N); D ~ N(0,
1). (The prose of the paper scales B differently; the published code, which produced its results, is followed.)
Parameter names and shapes are the code's, so weights trained with it load by name: nu_log, theta_log, gamma_log (N,),
B_re, B_im (N, H), C_re, C_im (H, N), D (H,). ν, θ, γ carry the optimiser hint of the paper: no weight decay and their
own learning rate.

The same class holds the two ladder rungs just below the LRU (Figure 1 / Table 1 of the paper):
`parameterization="plain"` stores λ directly as lambda_re, lambda_im (the "complex diagonal" rung) and
`gamma_norm=False` drops γ (the rung before normalisation). `ssmkit.layers.ladder.make_recurrent` names the rungs.

Parallel mode is the diagonal scan h_t = λ h_{t-1} + b_t of `ssmkit.ops.scan` (its "auto" picks the fastest; "fft"
computes the same convolution with kernel λ^k). Bidirectional: as in the bidirectional deep SSMs the paper compares
with, a second, independent set of λ, γ, B, C (the same names with suffix `_reverse`) runs on the time-reversed sequence
and its output is added: y = Re(C x_fwd) + Re(C' x_bwd) + D ⊙ u.

`rate`: the LRU is discrete-time, but the exponential parameterisation reads as λ = exp(Δ·(-exp(ν) + i exp(θ))) with
Δ = 1, so `rate` gives λ^rate = exp(rate·(-exp(ν) + i exp(θ))) (each step spans `rate` times as long; γ is a learned
normalisation, not a discretisation, and is left unchanged). The plain parameterisation has no such reading and
raises for rate != 1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ssmkit.layers.base import SequenceLayer, State, check_lr_hint, check_rate, check_sequence, check_token
from ssmkit.ops.scan import IMPLS, scan
from ssmkit.optim import set_hint

PARAMETERIZATIONS = ("exp", "plain")


class LRU(SequenceLayer):
    """Linear Recurrent Unit. x (B, L, H) real -> y (B, L, H) real; state (B, N) complex."""

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        bidirectional: bool = False,
        dropout: float = 0.0,
        lr: float | None = None,
        parameterization: str = "exp",
        gamma_norm: bool = True,
        scan_impl: str = "auto",
    ) -> None:
        super().__init__()
        _check_init_args(d_model, d_state, r_min, r_max, max_phase, dropout, lr)
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {parameterization!r}")
        if scan_impl not in IMPLS:
            raise ValueError(f"scan_impl must be one of {IMPLS}, got {scan_impl!r}")
        self.d_model, self.d_state = d_model, d_state
        self.r_min, self.r_max, self.max_phase = r_min, r_max, max_phase
        self.bidirectional = bidirectional
        self.parameterization, self.gamma_norm, self.scan_impl = parameterization, gamma_norm, scan_impl
        self.directions = ("", "_reverse") if bidirectional else ("",)
        for suffix in self.directions:
            self._init_direction(suffix, lr)
        self.D = nn.Parameter(torch.randn(d_model))  # (H,) real
        self.dropout = nn.Dropout(dropout)

    # ---- parameters and their initialisation ------------------------------------------------------------------
    def _init_direction(self, suffix: str, lr: float | None) -> None:
        H, N = self.d_model, self.d_state
        nu, theta = ring_init(N, self.r_min, self.r_max, self.max_phase)  # (N,), (N,) real
        ssm_params = {}
        if self.parameterization == "exp":
            ssm_params["nu_log"] = torch.log(nu)
            ssm_params["theta_log"] = torch.log(theta)
        else:
            lam = torch.polar(torch.exp(-nu), theta)  # (N,) complex
            ssm_params["lambda_re"], ssm_params["lambda_im"] = lam.real, lam.imag
        if self.gamma_norm:
            # log sqrt(1 - |λ|²), with 1 - exp(-2ν) as -expm1(-2ν): finite even at |λ| = 1 - 1e-38
            ssm_params["gamma_log"] = 0.5 * torch.log(-torch.expm1(-2 * nu))
        for name, value in ssm_params.items():
            self.register_parameter(name + suffix, set_hint(nn.Parameter(value), lr=lr, weight_decay=0.0))
        self.register_parameter("B_re" + suffix, nn.Parameter(torch.randn(N, H) / math.sqrt(2 * H)))  # (N, H)
        self.register_parameter("B_im" + suffix, nn.Parameter(torch.randn(N, H) / math.sqrt(2 * H)))  # (N, H)
        self.register_parameter("C_re" + suffix, nn.Parameter(torch.randn(H, N) / math.sqrt(N)))  # (H, N)
        self.register_parameter("C_im" + suffix, nn.Parameter(torch.randn(H, N) / math.sqrt(N)))  # (H, N)

    def _p(self, name: str, suffix: str) -> Tensor:
        return getattr(self, name + suffix)

    def log_lambda(self, suffix: str = "") -> Tensor:
        """log λ = -exp(ν_log) + i exp(θ_log), (N,) complex (exponential parameterisation only)."""
        return torch.complex(-torch.exp(self._p("nu_log", suffix)), torch.exp(self._p("theta_log", suffix)))

    def lambda_(self, suffix: str = "", rate: float = 1.0) -> Tensor:
        """λ^rate, (N,) complex."""
        if self.parameterization == "exp":
            return torch.exp(rate * self.log_lambda(suffix))
        if rate != 1.0:
            raise ValueError(
                f"rate={rate} needs a continuous-time reading of λ; the plain (λ_re, λ_im) parameterisation has none. "
                "Use parameterization='exp' (λ = exp(-exp(ν) + i exp(θ)), where rate gives λ^rate) or rate=1"
            )
        return torch.complex(self._p("lambda_re", suffix), self._p("lambda_im", suffix))

    def B_bar(self, suffix: str = "") -> Tensor:
        """γ ⊙ B (N, H) complex (just B without γ normalisation)."""
        B = torch.complex(self._p("B_re", suffix), self._p("B_im", suffix))  # (N, H)
        if self.gamma_norm:
            B = torch.exp(self._p("gamma_log", suffix)).unsqueeze(-1) * B
        return B

    def C(self, suffix: str = "") -> Tensor:
        return torch.complex(self._p("C_re", suffix), self._p("C_im", suffix))  # (H, N) complex

    # ---- the three modes --------------------------------------------------------------------------------------
    def forward(self, x: Tensor, rate: float = 1.0) -> Tensor:  # (B, L, H) -> (B, L, H)
        check_sequence(x, self.d_model)
        check_rate(rate)
        y = x * self.D  # (B, L, H)
        for suffix in self.directions:
            u = x.flip(1) if suffix else x
            states = scan(self.lambda_(suffix, rate), self._input(u, suffix), impl=self.scan_impl)  # (B, L, N) complex
            y_dir = self._output(states, suffix)  # (B, L, H)
            y = y + (y_dir.flip(1) if suffix else y_dir)
        return self.dropout(y)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        """Zeros (B, N), complex (complex64 for a float32 layer)."""
        dtype = dtype or self.D.dtype
        complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        return torch.zeros(batch_size, self.d_state, dtype=complex_dtype, device=device or self.D.device)

    def step(self, x_t: Tensor, state: State, rate: float = 1.0) -> tuple[Tensor, State]:  # (B, H) -> (B, H)
        self._no_step_if_bidirectional()
        check_token(x_t, self.d_model)
        check_rate(rate)
        self._check_state(state, x_t.shape[0])
        state = self.lambda_("", rate) * state + self._input(x_t, "")  # (B, N) complex
        y_t = self._output(state, "") + self.D * x_t  # (B, H)
        return self.dropout(y_t), state

    def step_chunk(self, x: Tensor, state: State, rate: float = 1.0) -> tuple[Tensor, State]:  # (B, L, H)
        self._no_step_if_bidirectional()
        check_sequence(x, self.d_model)
        check_rate(rate)
        self._check_state(state, x.shape[0])
        states = scan(self.lambda_("", rate), self._input(x, ""), h0=state, impl=self.scan_impl)  # (B, L, N)
        y = self._output(states, "") + self.D * x  # (B, L, H)
        return self.dropout(y), states[:, -1]

    # ---- pieces -----------------------------------------------------------------------------------------------
    def _input(self, u: Tensor, suffix: str) -> Tensor:
        """γ ⊙ (B u): (..., H) real -> (..., N) complex, as two real matrix products."""
        B = self.B_bar(suffix)  # (N, H) complex
        return torch.complex(u @ B.real.T, u @ B.imag.T)

    def _output(self, states: Tensor, suffix: str) -> Tensor:
        """Re(C x) = C_re x_re - C_im x_im: (..., N) complex -> (..., H) real."""
        C = self.C(suffix)  # (H, N)
        return states.real @ C.real.T - states.imag @ C.imag.T

    def _check_state(self, state: State, batch: int) -> None:
        if not isinstance(state, Tensor) or not state.is_complex() or state.shape != (batch, self.d_state):
            got = tuple(state.shape) if isinstance(state, Tensor) else type(state).__name__
            raise ValueError(
                f"state must be a complex tensor of shape (B, N) = ({batch}, {self.d_state}) "
                f"(from initial_state or a previous step), got {got}"
            )

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_state={self.d_state}, r_min={self.r_min}, r_max={self.r_max}, "
            f"max_phase={self.max_phase:.4g}, parameterization={self.parameterization!r}, "
            f"gamma_norm={self.gamma_norm}, bidirectional={self.bidirectional}"
        )


def ring_init(N: int, r_min: float, r_max: float, max_phase: float) -> tuple[Tensor, Tensor]:
    """ν, θ (N,) with λ = exp(-ν + iθ) uniform on the ring r_min <= |λ| <= r_max, phase in [0, max_phase] (Section 3.3).

    |λ|² = u1 (r_max² - r_min²) + r_min² is uniform in [r_min², r_max²] (uniform in area), ν = -½ log |λ|².
    The edge cases are guarded: u is drawn from the open interval (0, 1), so |λ| = 0 (ν = inf) and θ = 0
    (θ_log = -inf) cannot occur; r_max = 1 gives |λ| < 1 strictly.
    """
    tiny = torch.finfo(torch.float32).tiny
    u1 = torch.rand(N).clamp(tiny, 1 - 1e-7)
    u2 = torch.rand(N).clamp(tiny, 1.0)
    nu = -0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2)
    theta = max_phase * u2
    return nu.clamp_min(tiny), theta.clamp_min(tiny) if max_phase > 0 else theta


def _check_init_args(d_model, d_state, r_min, r_max, max_phase, dropout, lr) -> None:
    for name, value in (("d_model", d_model), ("d_state", d_state)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not (0.0 <= r_min <= r_max <= 1.0):
        raise ValueError(f"need 0 <= r_min <= r_max <= 1 (the ring of initial |λ|), got r_min={r_min}, r_max={r_max}")
    if r_max == 0.0:
        raise ValueError("r_max must be > 0: |λ| = 0 has no exponential parameterisation (ν = inf)")
    if not (0.0 < max_phase <= 2 * math.pi + 1e-12):
        raise ValueError(f"max_phase must be in (0, 2π], got {max_phase}")
    if not (0.0 <= dropout < 1.0):
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    check_lr_hint(lr, "ν, θ, γ")
