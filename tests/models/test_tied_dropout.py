"""Tied dropout (one mask per sequence and channel, shared over time: the S4 code's DropoutNd) in the block."""

import pytest
import torch

from ssmkit.models import SequenceModel
from ssmkit.models.block import TiedDropout


def test_mask_is_shared_over_time_and_scaled():
    torch.manual_seed(0)
    drop = TiedDropout(0.5).train()
    x = torch.ones(8, 50, 16)
    y = drop(x)
    assert torch.equal(y, y[:, :1].expand_as(y))  # same mask at every step
    assert set(torch.unique(y).tolist()) <= {0.0, 2.0}  # kept entries scaled by 1 / (1 - p)
    assert 0 < (y == 0).float().mean() < 1


def test_identity_in_eval_and_tokens_elementwise():
    drop = TiedDropout(0.3)
    x = torch.randn(4, 10, 6)
    assert torch.equal(drop.eval()(x), x)
    y = drop.train()(torch.ones(200, 6))  # a single token (B, H): an ordinary elementwise mask
    assert 0 < (y == 0).float().mean() < 1


def test_model_option():
    model = SequenceModel(3, d_model=8, n_layers=2, dropout=0.2, tie_dropout=True)
    assert all(isinstance(b.dropout, TiedDropout) for b in model.blocks)
    model.train()
    model(torch.randn(2, 12, 1)).sum().backward()
    assert isinstance(SequenceModel(3, d_model=8, n_layers=1, dropout=0.2).blocks[0].dropout, torch.nn.Dropout)
    with pytest.raises(TypeError, match="tie_dropout"):
        SequenceModel(3, d_model=8, n_layers=1, tie_dropout="yes")
