"""HiPPO: the memory operators (Gu et al., NeurIPS 2020) from which LSSL, S4 and S4D are initialised."""

from ssmkit.hippo.diag_init import diag_init
from ssmkit.hippo.discretize import discretize
from ssmkit.hippo.nplr import dplr, nplr, rank_correction
from ssmkit.hippo.online import HiPPO
from ssmkit.hippo.reconstruct import reconstruct
from ssmkit.hippo.transition import transition

__all__ = ["HiPPO", "diag_init", "discretize", "dplr", "nplr", "rank_correction", "reconstruct", "transition"]
