"""HiPPO: the memory operators (Gu et al., NeurIPS 2020) from which LSSL, S4 and S4D are initialised.

- `transition(measure, N, **kw) -> (A, B)`: float64 A (N, N), B (N,), S4 reference conventions (transition.py).
- `rank_correction`, `nplr`, `dplr`: the normal-plus-low-rank form and the S4 initialiser (nplr.py).
- `diag_init(init, N) -> (Lambda, B)`: S4D-LegS / -Inv / -Lin / -Real / random (diag_init.py).
- `discretize(A, B, dt, method, alpha=None) -> (Ab, Bb)`: Euler, backward Euler, bilinear/GBT, ZOH; dense or
  diagonal, batched (discretize.py).
- `HiPPO(measure, N, dt, method, ...)`: online approximation f (B, L) -> c (B, L, N) (online.py, legs.py), and
  `reconstruct(c, measure, s, t, theta=...)`: the approximated history at times s (reconstruct.py).
"""

from ssmkit.hippo.diag_init import diag_init
from ssmkit.hippo.discretize import discretize
from ssmkit.hippo.nplr import dplr, nplr, rank_correction
from ssmkit.hippo.online import HiPPO
from ssmkit.hippo.reconstruct import reconstruct
from ssmkit.hippo.transition import transition

__all__ = ["HiPPO", "diag_init", "discretize", "dplr", "nplr", "rank_correction", "reconstruct", "transition"]
