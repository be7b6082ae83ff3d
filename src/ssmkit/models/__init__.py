"""The deep residual backbone and its baselines."""
