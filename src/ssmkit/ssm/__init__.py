"""Parameterised state-space cores: dense (LSSL), DPLR (S4), diagonal (S4D), and their convolution kernels."""
