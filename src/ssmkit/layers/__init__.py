"""Sequence layers users put in their models. All follow `ssmkit.layers.base.SequenceLayer`."""

from ssmkit.layers.base import BidirectionalStepError, SequenceLayer

__all__ = ["BidirectionalStepError", "SequenceLayer"]
