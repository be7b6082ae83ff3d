"""HiPPO: the memory operators (Gu et al., NeurIPS 2020) from which LSSL, S4 and S4D are initialised."""

from ssmkit.hippo.discretize import discretize
from ssmkit.hippo.transition import transition

__all__ = ["discretize", "transition"]
