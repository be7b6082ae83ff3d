"""Sequence layers users put in their models. All follow `ssmkit.layers.base.SequenceLayer`."""

from ssmkit.layers.base import BidirectionalStepError, SequenceLayer
from ssmkit.layers.ladder import VARIANTS, DenseRNN, make_recurrent
from ssmkit.layers.lru import LRU
from ssmkit.layers.lssl import LSSL
from ssmkit.layers.s4 import S4
from ssmkit.layers.s4d import S4D

__all__ = [
    "LRU",
    "DenseRNN",
    "VARIANTS",
    "make_recurrent",
    "LSSL",
    "S4",
    "S4D",
    "BidirectionalStepError",
    "SequenceLayer",
]
