"""What the three linear state-space layers (LSSL, S4, S4D) share: Δ, the D skip, output channels, the output path.

Each layer is x' = A x + B u, y = C x + D u per input channel h (Gu et al. 2021, LSSL eq. (1); S4 eq. (1)), with a
learned step Δ_h. This module holds only what does not depend on how A is parameterised:

- Δ: stored as log Δ (H,) or (channels·H,), initialised log-uniform in [dt_min, dt_max] (LSSL §4, S4 App. D.2);
  `rate` at call time multiplies Δ (S4 §5.2, the half-rate Speech Commands test).
- the optimiser hints of the SSM parameters (`ssm_lrs`): one lr for Δ, A and B, or one per group {dt, A, B}.
- n_ssm (S4, S4D): the number of distinct (A, B) shared across the H channels (`check_n_ssm`, `tile_ssm`).
- channels: each input channel h has `channels` outputs (S4's output channels: `channels` rows of C for one state;
  LSSL's M copies), mixed back to H by one Linear(channels·H -> H) when channels > 1.
- D: skip term y += D u, one per (channel, h), D (channels, H).
- bidirectional (S4 code, "bidirectional"): a second set of output rows C_bwd reads the same state run over the
  reversed input; y = K_fwd * u (causal) + the anticausal kernel K_bwd at lags -1, -2, ... (`ops.fftconv`).
- caching of the kernel (per L and rate) and of the discrete system for `step`, only without autograd: the key is
  the parameters' storage and version counters, so any in-place update through the parameter (optimiser step,
  `load_state_dict`, `.to()`) invalidates it. (Writes through `param.data` bypass the version counter: call
  `layer.clear_cache()` after such an edit.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ssmkit.layers.base import SequenceLayer, check_rate, check_sequence, check_token
from ssmkit.ops import fftconv
from ssmkit.optim import set_hint


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_int(name: str, value: Any, minimum: int = 1, even: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (even and value % 2):
        what = f"an {'even ' if even else ''}integer >= {minimum}"
        raise ValueError(f"{name} must be {what}; got {value!r}")
    return value


def check_dt_range(dt_min: float, dt_max: float) -> None:
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (dt_min, dt_max))
    if not ok or not 0 < dt_min <= dt_max:
        raise ValueError(f"need finite 0 < dt_min <= dt_max; got dt_min={dt_min!r}, dt_max={dt_max!r}")


def check_sequence_cheaply(x: Any, d_model: int) -> None:
    """`check_sequence` (shape, dtype, all finite) at the cost of one reduction: any NaN or inf makes the sum NaN or
    inf, so the elementwise check (and its error message) runs only when the sum is not finite. Training calls every
    layer with large inputs; the elementwise check would be several passes over each."""
    if (
        isinstance(x, Tensor)
        and x.dim() == 3
        and x.is_floating_point()
        and x.shape[-1] == d_model
        and x.shape[1] >= 1
        and bool(torch.isfinite(x.sum()))
    ):
        return
    check_sequence(x, d_model)


def init_log_dt(shape: tuple[int, ...], dt_min: float, dt_max: float) -> Tensor:
    """log Δ ~ Uniform(log dt_min, log dt_max), real (shape). S4 App. D.2 / LSSL §4 (Δ log-uniformly spread)."""
    u = torch.rand(shape, dtype=torch.float64)
    return (math.log(dt_min) + u * (math.log(dt_max) - math.log(dt_min))).to(torch.get_default_dtype())


SSM_LR_GROUPS = ("dt", "A", "B")


def ssm_lrs(lr: Any) -> dict[str, float | None]:
    """The learning-rate hint of each SSM parameter group {dt, A, B} from a layer's `lr` option.

    The S4 authors' code (state-spaces/s4, src/models/sequence/kernels/kernel.py, `Kernel.__init__` and `register`)
    takes the kernel's `lr` as either one value for all of Δ, A and B (None = the optimiser's global lr) or a mapping
    {dt, A, B} in which every group not named gets None; e.g. its LRA configs set `lr: {dt: null, A: 0.001, B: 0.001}`,
    Δ at the global lr. Every such parameter gets weight decay 0 whatever its lr (the code's `wd: 0.0`), as here.
    Groups: dt = log Δ; A = Λ (and P for S4, A for LSSL); B = B. An lr of 0 keeps the group fixed (AdamW then moves
    nothing), where the S4 code registers a buffer instead.
    """
    if isinstance(lr, dict):
        unknown = sorted(set(map(str, lr)) - set(SSM_LR_GROUPS))
        if unknown:
            raise ValueError(f"lr mapping has unknown group(s) {unknown}; valid groups: {', '.join(SSM_LR_GROUPS)}")
        lrs = {k: lr.get(k) for k in SSM_LR_GROUPS}
    else:
        lrs = dict.fromkeys(SSM_LR_GROUPS, lr)
    for k, v in lrs.items():
        if isinstance(v, str):  # YAML 1.1 reads 1e-3 (no dot) as a string, e.g. from model.layer_options.lr=1e-3
            try:
                v = lrs[k] = float(v)
            except ValueError:
                pass
        ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0)
        if not ok:
            raise ValueError(
                f"lr must be a number >= 0, null (the optimiser's lr) or a mapping {{dt, A, B}} of those; got "
                f"{v!r} for {k}"
            )
    return lrs


def check_n_ssm(n_ssm: Any, d_model: int) -> int:
    """n_ssm (None = H: one SSM per channel) as an int that divides H."""
    if n_ssm is None:
        return d_model
    check_int("n_ssm", n_ssm)
    if d_model % n_ssm:
        raise ValueError(f"n_ssm must divide d_model (H = {d_model}); got n_ssm={n_ssm}")
    return n_ssm


def tile_ssm(x: Tensor, d_model: int, dim: int = 0) -> Tensor:
    """The n_ssm copies of an SSM parameter spread over the H channels: size S at `dim` -> H, channel h taking copy
    h mod S (the S4 code's `repeat(x, 't n -> (v t) n')`, S4 repo src/models/sequence/kernels/ssm.py). No copy when
    S = H."""
    S = x.shape[dim]
    if S == d_model:
        return x
    reps = [1] * x.dim()
    reps[dim] = d_model // S
    return x.repeat(reps)


def ssm_parameter(value: Tensor, lr: float | None, weight_decay: float | None) -> nn.Parameter:
    """A state-space parameter (A / Λ, P, B, log Δ) with the papers' optimiser hints: own lr, no weight decay."""
    return set_hint(nn.Parameter(value), lr=lr, weight_decay=weight_decay)


def complex_parameter(value: Tensor) -> Tensor:
    """A complex tensor stored as real (..., 2) (view_as_real), so any optimiser, DDP and state_dict handle it."""
    return torch.view_as_real(value.to(torch.complex128)).to(torch.get_default_dtype()).clone()


def as_complex(param: Tensor) -> Tensor:
    """The complex view of a (..., 2) real parameter (complex64 for float32, complex128 for float64)."""
    return torch.view_as_complex(param if param.is_contiguous() else param.contiguous())


class SSMLayer(SequenceLayer):
    """Shared parts of LSSL, S4 and S4D: log Δ, D, output channels, dropout, the convolutional forward.

    Subclasses provide `kernel(L, rate) -> K (S, channels, H, L)` (S = 2 directions if bidirectional, else 1) and the
    recurrent pieces `step` / `step_chunk` using `_readout`.
    """

    def __init__(
        self,
        d_model: int,
        channels: int,
        bidirectional: bool,
        dropout: float,
        dt_min: float,
        dt_max: float,
        dt_shape: tuple[int, ...],
        lr: float | dict[str, float | None] | None,
        weight_decay: float | None,
    ) -> None:
        super().__init__()
        self.ssm_lr = ssm_lrs(lr)  # {dt, A, B} -> lr hint (None = the optimiser's lr)
        self.d_model = check_int("d_model", d_model)
        self.channels = check_int("channels", channels)
        if not isinstance(bidirectional, bool):
            raise TypeError(f"bidirectional must be a bool; got {bidirectional!r}")
        self.bidirectional = bidirectional
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1); got {dropout!r}")
        check_dt_range(dt_min, dt_max)
        self.dt_min, self.dt_max = float(dt_min), float(dt_max)
        log_dt = init_log_dt(dt_shape, dt_min, dt_max)  # real dt_shape
        self.log_dt = ssm_parameter(log_dt, self.ssm_lr["dt"], weight_decay)
        self.D = nn.Parameter(torch.randn(channels, d_model))  # (channels, H) real, as the S4 code
        self.output_linear = nn.Linear(channels * d_model, d_model) if channels > 1 else None
        self.dropout = nn.Dropout(dropout)
        self._cache: dict[str, tuple[tuple, Any]] = {}

    @property
    def n_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def dt(self, rate: float = 1.0) -> Tensor:
        """Δ at sampling-rate factor `rate`: rate · exp(log Δ), real, shape of log_dt."""
        return rate * torch.exp(self.log_dt)

    def kernel(self, L: int, rate: float = 1.0) -> Tensor:  # -> (S, channels, H, L) real
        raise NotImplementedError

    # ---- parallel mode ------------------------------------------------------------------------------------------
    def forward(self, x: Tensor, rate: float = 1.0) -> Tensor:  # (B, L, H) -> (B, L, H)
        check_sequence_cheaply(x, self.d_model)
        check_rate(rate)
        L = x.shape[1]
        K = self._cached("kernel", (rate, L), lambda: self.kernel(L, rate))  # (S, channels, H, L)
        y = fftconv(x, K if self.bidirectional else K[0], self.D, bidirectional=self.bidirectional)  # + D x, fused
        return self._mix(y)  # (B, L, H)

    def _convolve(self, x: Tensor, K: Tensor) -> Tensor:
        """y[..., c, h] = (K[c, h] * x[..., h]) for each output channel c: (B, L, H) -> (B, L, channels, H)."""
        return fftconv(x, K if self.bidirectional else K[0], bidirectional=self.bidirectional)

    def _output(self, y: Tensor, x: Tensor) -> Tensor:
        """y (..., channels, H) from the SSM, x (..., H) the input: add D x, mix channels, dropout -> (..., H)."""
        return self._mix(y + self.D * x.unsqueeze(-2))  # (..., channels, H)

    def _mix(self, y: Tensor) -> Tensor:
        """y (..., channels, H) with D x already added: mix channels, dropout -> (..., H)."""
        if self.output_linear is None:
            y = y.squeeze(-2)  # (..., H)
        else:
            y = self.output_linear(y.flatten(-2))  # (..., channels·H) -> (..., H)
        return self.dropout(y)

    # ---- recurrent mode helpers ---------------------------------------------------------------------------------
    def _check_step(self, x_t: Tensor, rate: float) -> None:
        self._no_step_if_bidirectional()
        check_token(x_t, self.d_model)
        check_rate(rate)

    def _check_chunk(self, x: Tensor, rate: float) -> None:
        self._no_step_if_bidirectional()
        check_sequence(x, self.d_model)
        check_rate(rate)

    def _cached(self, name: str, args: Any, compute: Callable[[], Any]) -> Any:
        """compute(), memoised (one entry per name) while `args` (e.g. rate, L) and every parameter and buffer are
        unchanged, and only when autograd is off (a cached graph could not be backpropagated twice)."""
        if torch.is_grad_enabled():
            return compute()
        key = (args,) + tuple(
            (t.data_ptr(), t._version, t.dtype, t.device) for t in list(self.parameters()) + list(self.buffers())
        )
        hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = compute()
        self._cache[name] = (key, value)
        return value

    def clear_cache(self) -> None:
        """Drop the cached kernel and discrete system (only needed after editing `param.data` in place)."""
        self._cache.clear()

    def _real_dtype(self, dtype: Any = None) -> torch.dtype:
        return self.log_dt.dtype if dtype is None else dtype
