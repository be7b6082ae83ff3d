"""Contract cases for the LRU (every option that changes the computation, both directions) and the ablation ladder."""

from __future__ import annotations

import math
from functools import partial

from ssmkit.layers.ladder import VARIANTS, make_recurrent
from ssmkit.layers.lru import LRU

H, N = 5, 8


def _lru(**kw):
    return LRU(H, N, **kw)


CASES = []
for bidirectional in (False, True):
    direction = "bi" if bidirectional else "uni"
    for parameterization in ("exp", "plain"):
        for gamma_norm in (True, False):
            CASES.append(
                (
                    f"lru-{parameterization}-{'gamma' if gamma_norm else 'nogamma'}-{direction}",
                    partial(
                        _lru, parameterization=parameterization, gamma_norm=gamma_norm, bidirectional=bidirectional
                    ),
                )
            )
    # the paper's LRA settings: a ring near the unit circle and a small phase range
    CASES.append(
        (
            f"lru-ring-{direction}",
            partial(_lru, r_min=0.9, r_max=0.999, max_phase=math.pi / 10, bidirectional=bidirectional),
        )
    )
    for impl in ("chunked", "parallel", "fft", "sequential"):
        CASES.append((f"lru-scan-{impl}-{direction}", partial(_lru, scan_impl=impl, bidirectional=bidirectional)))
    for variant in VARIANTS:
        CASES.append(
            (f"ladder-{variant}-{direction}", partial(make_recurrent, variant, H, N, bidirectional=bidirectional))
        )
