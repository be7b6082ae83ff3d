"""`ssmkit hippo`: online function approximation with each HiPPO measure (as in the HiPPO paper's experiments).

Feeds test signals sample by sample through `HiPPO` (1000 samples on [0, 1) by default), reconstructs the history
from the final state, prints the reconstruction MSE against N for each measure and signal, and writes a PNG of
signal against reconstruction for legs, legt, fout and lagt. "Each measure" is every online one of `HiPPO`: legs,
legt, fout, lagt, and lmu (LegT in the LMU's basis: the same numbers as legt), glagt, foud.

The MSE is taken over what each measure is meant to remember (its support): LegS all of [0, 1]; LegT, FouT and LMU
the window [1 - theta, 1]; LagT all of [0, 1] weighted by exp(-(1 - s)/theta); GLagT weighted by its measure
x^(-alpha) exp(-beta x), x = (1 - s)/theta (the last sample left out: the tilted basis is 0 or infinite there); FouD
against the history it holds, weighted by exp(-x/2) and folded onto one window (see `reconstruct.py`). LegS is
shown twice: with the state starting at zero (the published HiPPO code) and at the projection of the first sample
(init="first", as the HiPPO RNN cell). Once N resolves the signal the error stops falling: what remains, ~1e-4 at
1000 samples, is the discretisation's (the bilinear step), not the projection's; with a zero start LegS also keeps a
start-up error that grows slowly with N.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

# (label, measure, theta, init, what it remembers); the first row of each measure is plotted
SETUPS = [
    ("legs", "legs", 1.0, "zero", "all of [0, t] (scale-invariant)"),
    ("legs*", "legs", 1.0, "first", "all of [0, t], state started at the first sample"),
    ("legt", "legt", 0.5, "zero", "window [t - 0.5, t]"),
    ("fout", "fout", 0.5, "zero", "window [t - 0.5, t]"),
    ("lagt", "lagt", 0.05, "zero", "exponential, timescale 0.05"),
    ("lmu", "lmu", 0.5, "zero", "window [t - 0.5, t] (LegT in the LMU's basis)"),
    ("glagt", "glagt", 0.05, "zero", "all the past, weight x^-0.5 exp(-0.3 x), x = (t - s)/0.05"),
    ("foud", "foud", 0.25, "zero", "the exp(-x/2)-weighted past folded onto [t - 0.25, t]"),
]
GLAGT = {"alpha": 0.5, "beta": 0.3}  # the demo's generalised Laguerre parameters
PLOTTED = ("legs", "legt", "fout", "lagt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--N", type=int, nargs="+", default=[8, 16, 32, 64, 128], help="state sizes (even)")
    parser.add_argument("--length", type=int, default=1000, help="samples on [0, 1) (default 1000)")
    parser.add_argument("--plot-N", type=int, default=64, help="state size shown in the figure (default 64)")
    parser.add_argument(
        "--out", default="hippo_reconstruction.png", help="PNG path (default ./hippo_reconstruction.png)"
    )
    parser.add_argument("--no-plot", action="store_true", help="print the table only")


def make_signals(L: int) -> tuple[list[str], torch.Tensor]:
    """Names and values (3, L) of the test signals on the grid t = j / L."""
    t = torch.arange(L, dtype=torch.float64) / L
    two_tones = torch.sin(2 * math.pi * 5 * t) + 0.5 * torch.cos(2 * math.pi * 13 * t)  # HiPPO paper's LegS test
    chirp = torch.sin(2 * math.pi * (2 * t + 6 * t**2))
    g = torch.Generator().manual_seed(0)
    freqs = torch.arange(1, 9, dtype=torch.float64)
    amps = torch.randn(8, dtype=torch.float64, generator=g) / freqs
    phases = 2 * math.pi * torch.rand(8, dtype=torch.float64, generator=g)
    smooth = (amps[:, None] * torch.sin(2 * math.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    return ["two tones 5+13 Hz", "chirp 2-14 Hz", "smooth random"], torch.stack([two_tones, chirp, smooth])


def support_weights(measure: str, theta: float, s: torch.Tensor, t: float) -> torch.Tensor:
    """Weights over the sample times s of the region the measure remembers at time t (see module docstring)."""
    x = (t - s) / theta
    if measure == "legs":
        return torch.ones_like(s)
    if measure == "lagt":
        return torch.exp(-x)
    if measure == "glagt":
        w = x.clamp_min(1e-12) ** -GLAGT["alpha"] * torch.exp(-GLAGT["beta"] * x)
        return torch.where(x > 0, w, torch.zeros_like(w))
    if measure == "foud":
        return (x < 1).to(s.dtype)
    return (x <= 1).to(s.dtype)


def folded_history(f: torch.Tensor, theta: float, x: torch.Tensor) -> torch.Tensor:
    """FouD's target at the lags x of the samples: sum_k exp(-(x + k)/2) f(t - theta (x + k)); f (B, L) on the
    grid of `HiPPO.times`, sample spacing 1/L (lags that fall between samples take the nearest one)."""
    L = f.shape[-1]
    j = torch.arange(L)
    F = torch.zeros_like(f)
    step = theta * L  # samples per window
    for k in range(int(L / step) + 1):
        i = torch.round(j - k * step).long()
        F = F + torch.where(i >= 0, torch.exp(-(x + k) / 2) * f[..., i.clamp_min(0)], torch.zeros(()))
    return F


def evaluate(
    measure: str, theta: float, N: int, f: torch.Tensor, init: str = "zero"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstruction (B, L) from the final state, weighted MSE (B,)) for signals f (B, L)."""
    from ssmkit.hippo.online import HiPPO

    L = f.shape[-1]
    kw = GLAGT if measure == "glagt" else None
    h = HiPPO(measure, N, dt=1.0 / L, theta=theta, init=init, measure_kwargs=kw)
    c = h(f)[:, -1]  # (B, N) final state
    s = h.times(L)  # sample j at time (j + 1) / L
    w = support_weights(measure, theta, s, s[-1].item())
    rec = torch.where(w > 0, h.reconstruct(c, s, s[-1]), torch.zeros(()))  # (B, L)
    target = folded_history(f, theta, (s[-1] - s) / theta) if measure == "foud" else f
    return rec, ((rec - target) ** 2 * w).sum(-1) / w.sum()


def run(args: argparse.Namespace) -> int:
    if any(n < 2 or n % 2 for n in args.N + [args.plot_N]):
        raise SystemExit(f"--N and --plot-N must be even and >= 2 (fout needs pairs); got {args.N} and {args.plot_N}")
    if args.length < 2:
        raise SystemExit(f"--length must be >= 2; got {args.length}")
    start = time.perf_counter()
    names, f = make_signals(args.length)
    Ns = sorted(set(args.N))
    print(f"HiPPO online reconstruction, {args.length} samples on [0, 1), bilinear, MSE from the final state")
    print("over what each measure remembers (LegS: [0, 1]; LegT/FouT/LMU: the last theta; LagT, GLagT: weighted by")
    print("their measure; FouD: its exp-weighted history folded onto one window)\n")
    header = f"{'measure':<8} {'signal':<18}" + "".join(f"{'N=' + str(n):>11}" for n in Ns)
    print(header)
    print("-" * len(header))
    shown = {}
    for label, measure, theta, init, _ in SETUPS:
        table = {n: evaluate(measure, theta, n, f, init)[1] for n in Ns}
        for i, name in enumerate(names):
            print(f"{label:<8} {name:<18}" + "".join(f"{table[n][i].item():>11.2e}" for n in Ns))
        if label in PLOTTED and not args.no_plot:
            shown[label] = evaluate(measure, theta, args.plot_N, f, init)[0]
    print("\nlegs* = legs with the state started at the first sample (init='first'); theta: legt/fout/lmu 0.5,")
    print(f"lagt/glagt 0.05, foud 0.25; glagt alpha={GLAGT['alpha']}, beta={GLAGT['beta']}")
    print(f"({time.perf_counter() - start:.1f} s)")
    if not args.no_plot:
        _plot(args.out, args.plot_N, f, shown)
        print(f"wrote {args.out}")
    return 0


def _plot(path: str, N: int, f: torch.Tensor, shown: dict[str, torch.Tensor]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    L = f.shape[-1]
    s = (torch.arange(L, dtype=torch.float64) + 1) / L
    setups = [x for x in SETUPS if x[0] in PLOTTED]
    fig, axes = plt.subplots(len(setups), 1, figsize=(9, 2.3 * len(setups)), sharex=True)
    for ax, (_, measure, theta, _, remembers) in zip(axes, setups, strict=True):
        ax.plot(s, f[0], color="0.6", lw=2, label="signal")
        rec = shown[measure][0]
        if measure in ("legt", "fout"):  # outside the window the basis is extrapolated: show the window only
            keep = s >= s[-1] - theta
            ax.axvspan(float(s[-1] - theta), float(s[-1]), color="C0", alpha=0.08)
        elif measure == "lagt":
            keep = s >= s[-1] - 6 * theta
            ax.axvspan(float(s[-1] - 6 * theta), float(s[-1]), color="C0", alpha=0.08)
        else:
            keep = torch.ones(L, dtype=torch.bool)
        ax.plot(s[keep], rec[keep], color="C0", lw=1, label=f"reconstruction, N={N}")
        ax.set_title(f"{measure}: remembers {remembers}", fontsize=9)
        ax.set_ylim(-2, 2)
        ax.legend(loc="lower left", fontsize=8)
    axes[-1].set_xlabel("time s (reconstructed from the state at t = 1)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
