"""The deep residual backbone (encoder, blocks, pooling, heads) and its Transformer and LSTM baselines."""

from ssmkit.models.block import LAYERS, Block, make_layer
from ssmkit.models.heads import Head, pool
from ssmkit.models.lstm import LSTM
from ssmkit.models.sequence_model import SequenceModel
from ssmkit.models.transformer import Transformer

__all__ = ["LAYERS", "LSTM", "Block", "Head", "SequenceModel", "Transformer", "make_layer", "pool"]
