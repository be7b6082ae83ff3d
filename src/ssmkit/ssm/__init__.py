"""Parameterised state-space cores: dense (LSSL), DPLR (S4), diagonal (S4D), and their convolution kernels."""

from ssmkit.ssm.dense import dense_discrete, dense_kernel
from ssmkit.ssm.diag import diag_discrete, diag_kernel, diag_kernel_reference
from ssmkit.ssm.dplr import (
    dplr_ctilde,
    dplr_dense,
    dplr_discrete,
    dplr_kernel,
    dplr_kernel_from_ctilde,
    dplr_kernel_reference,
    dplr_step,
)

__all__ = [
    "dense_discrete",
    "dense_kernel",
    "diag_discrete",
    "diag_kernel",
    "diag_kernel_reference",
    "dplr_ctilde",
    "dplr_dense",
    "dplr_discrete",
    "dplr_kernel",
    "dplr_kernel_from_ctilde",
    "dplr_kernel_reference",
    "dplr_step",
]
