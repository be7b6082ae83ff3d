"""HiPPO: the memory operators (Gu et al., NeurIPS 2020) from which LSSL, S4 and S4D are initialised."""
