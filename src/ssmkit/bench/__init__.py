"""The benchmark suite behind `ssmkit bench`."""
