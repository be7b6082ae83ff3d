"""ssmkit: linear state-space sequence models (HiPPO, LSSL, S4, S4D, LRU).

Layers live in `ssmkit.layers`, the math they are built from in `ssmkit.hippo`, `ssmkit.ops` and `ssmkit.ssm`.
"""

__version__ = "0.1.0"
