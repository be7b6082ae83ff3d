"""The scalar linear recurrence along the state index that the structured HiPPO solves reduce to.

    H_0 = h0,   H_{n+1} = a_n H_n + e_n,   n = 0, ..., N-1       (a (N,) shared, e (..., N), h0 (...))

`linear_recurrence` evaluates it in blocks. Inside a block [p, q), in closed form with a cumulative product and sum,

    H_{p+i} = Q_i (H_p + sum_{m<i} e_{p+m} / Q_{m+1}),   Q_i = prod_{j<i} a_{p+j},

and across blocks by one explicit step, H_q = a_{q-1} H_{q-1} + e_{q-1}. A block ends after `block` indices, after
a (near-)zero coefficient, and wherever the running product would fall below exp(-20) (float32; exp(-300) in
float64); so the closed form never divides by a vanishing product and stays within the dtype's range. Its rounding
error is then eps times the largest term of the block's sum, as for the loop (|a_n| < 1: the last terms dominate).
O(N) work, about N / block Python iterations.
`linear_recurrence_reference` is the plain loop it is tested against.
"""

from __future__ import annotations

import torch
from torch import Tensor

_TINY = 1e-30  # a coefficient this small is treated as a zero: it ends its block
_LOG_RANGE = {torch.float64: 300.0}  # largest drop of log|prod a| allowed inside one block (20 for other dtypes)


def _block_edges(a: Tensor, block: int) -> list[int]:
    N = a.shape[0]
    cuts = set(range(0, N, block))
    mag = a.abs()
    cuts |= {int(i) + 1 for i in torch.nonzero(mag < _TINY).flatten()}
    log_range = _LOG_RANGE.get(a.dtype, 20.0)
    level = torch.floor(-torch.cumsum(torch.log(mag.clamp_min(_TINY)), 0) / log_range)  # (N,) bucket of log|Q|
    level = torch.cat([torch.zeros_like(level[:1]), level])  # level before index 0 is 0
    cuts |= {int(n) + 1 for n in torch.nonzero(level[1:] != level[:-1]).flatten()}  # product left its bucket at n
    return sorted(c for c in cuts if c < N) + [N]


def linear_recurrence(
    a: Tensor, e: Tensor, h0: Tensor | None = None, block: int = 16, edges: list[int] | None = None
) -> tuple[Tensor, Tensor]:
    """(H_0..H_{N-1} (..., N), H_N (...)) for H_{n+1} = a_n H_n + e_n, H_0 = h0 (zeros if None).

    edges: the block boundaries [0, ..., N], when the caller knows them to be safe (no coefficient near 0, the running
    product within range: see the module docstring); by default they are found from a (one host sync).
    """
    H = torch.empty_like(e)
    h = torch.zeros(e.shape[:-1], dtype=e.dtype, device=e.device) if h0 is None else h0  # carry H_p
    edges = _block_edges(a, block) if edges is None else edges
    for p, q in zip(edges[:-1], edges[1:], strict=True):
        Q = torch.cumprod(torch.cat([torch.ones_like(a[p : p + 1]), a[p : q - 1]]), dim=0)  # (q-p,)
        acc = torch.cumsum(e[..., p : q - 1] / Q[1:], dim=-1)  # (..., q-p-1)
        H[..., p:q] = Q * torch.cat([h[..., None], h[..., None] + acc], dim=-1)
        h = a[q - 1] * H[..., q - 1] + e[..., q - 1]
    return H, h


def linear_recurrence_reference(a: Tensor, e: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Plain loop for `linear_recurrence`."""
    h = torch.zeros(e.shape[:-1], dtype=e.dtype, device=e.device) if h0 is None else h0
    out = []
    for n in range(a.shape[0]):
        out.append(h)
        h = a[n] * h + e[..., n]
    return torch.stack(out, dim=-1), h
