"""The LRA Retrieval two-tower model: shapes, document order, padding, streaming, and the runner choosing it."""

import pytest
import torch

from ssmkit.data.base import Task, pad_collate
from ssmkit.layers.base import BidirectionalStepError
from ssmkit.models.dual import DualEncoder, combine, document_lengths
from ssmkit.train.build import build_model
from ssmkit.train.config import from_dict

VOCAB = 11


def _model(layer="s4d", norm="batch", prenorm=True, pool="mean", bidirectional=False, **kw):
    torch.manual_seed(0)
    opts = {"d_state": 8, "bidirectional": bidirectional}
    model = DualEncoder(
        2, vocab_size=VOCAB, pool=pool, d_model=8, n_layers=2, layer=layer, layer_options=opts, norm=norm,
        prenorm=prenorm, **kw,
    )  # fmt: skip
    return model.double()


def _pair(B=3, L=12, lens=((12, 7), (5, 12), (9, 9)), seed=1):
    """(B, L, 2) token pairs, document j of row b real for lens[b][j] steps, then 0 (padding)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(1, VOCAB, (B, L, 2), generator=g)
    for b, (l0, l1) in enumerate(lens):
        u[b, l0:, 0] = 0
        u[b, l1:, 1] = 0
    return u


def _warm_bn(model, u):
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(u)
    model.eval()


def test_shapes_and_lengths():
    model = _model()
    u = _pair()
    assert model(u).shape == (3, 2)
    a, b = model.encode(u)
    assert a.shape == b.shape == (3, 8)
    assert document_lengths(u[..., 0]).tolist() == [12, 5, 9]
    assert document_lengths(u[..., 1]).tolist() == [7, 12, 9]
    assert combine(a, b).shape == (3, 32)


@pytest.mark.parametrize("pool", ["mean", "last"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_swapping_documents_swaps_the_pooled_vectors_only(pool, bidirectional):
    model = _model(pool=pool, bidirectional=bidirectional)
    u = _pair()
    _warm_bn(model, u)
    with torch.no_grad():
        a, b = model.encode(u)
        a_s, b_s = model.encode(u.flip(-1))
        torch.testing.assert_close(a_s, b, rtol=0, atol=1e-12)
        torch.testing.assert_close(b_s, a, rtol=0, atol=1e-12)
        # the logits change only through the order-dependent features [v, u, u*v, v-u]
        torch.testing.assert_close(model(u.flip(-1)), model.decoder(combine(b, a)))
        assert not torch.allclose(model(u.flip(-1)), model(u))


@pytest.mark.parametrize("pool", ["mean", "last"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("train", [False, True])
def test_padding_in_either_document_does_not_leak(pool, bidirectional, train):
    """Extra padding on either document (and a longer batch) leaves both pooled vectors unchanged; changing what
    lies beyond a document's end (its padding) is impossible by construction, so we also change the other document's
    tail and check the first document's vector does not move."""
    model = _model(pool=pool, bidirectional=bidirectional)
    u = _pair()
    _warm_bn(model, u)
    model.train(train)  # train mode: BatchNorm uses the batch's valid tokens only
    longer = torch.cat([u, torch.zeros(3, 9, 2, dtype=u.dtype)], dim=1)  # 9 more padding steps on both documents
    with torch.no_grad():
        a, b = model.encode(u)
        a_l, b_l = model.encode(longer)
    torch.testing.assert_close(a_l, a, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(b_l, b, rtol=1e-10, atol=1e-10)
    # eval mode: a document's vector depends on its own tokens only, whatever the other document holds
    model.eval()
    other = u.clone()
    other[0, :3, 1] = torch.tensor([3, 4, 5])  # document 1 of row 0 changes, document 0 of row 0 does not
    with torch.no_grad():
        a0, b0 = model.encode(u)
        a1, b1 = model.encode(other)
    torch.testing.assert_close(a1, a0, rtol=0, atol=0)
    assert not torch.allclose(b1[0], b0[0])


@pytest.mark.parametrize("pool", ["mean", "last"])
@pytest.mark.parametrize("layer", ["s4d", "lru"])
def test_streaming_equals_parallel_for_a_causal_backbone(pool, layer):
    model = _model(layer=layer, pool=pool)
    u = _pair()
    _warm_bn(model, u)
    with torch.no_grad():
        y = model(u)
        state = model.initial_state(3)
        for t in range(u.shape[1]):
            y_t, state = model.step(u[:, t], state)
        torch.testing.assert_close(y_t, y, rtol=1e-9, atol=1e-9)
        state, outs = model.initial_state(3), []
        for start in (0, 5, 9):
            y_c, state = model.step_chunk(u[:, start : {0: 5, 5: 9, 9: 12}[start]], state)
            outs.append(y_c)
        y_chunks = torch.cat(outs, 1)
        torch.testing.assert_close(y_chunks[:, -1], y, rtol=1e-9, atol=1e-9)
        # each prefix's output equals the parallel pass on that prefix
        torch.testing.assert_close(y_chunks[:, 6], model(u[:, :7]), rtol=1e-9, atol=1e-9)


def test_bidirectional_backbone_refuses_to_stream():
    model = _model(bidirectional=True).eval()
    with pytest.raises(BidirectionalStepError):
        model.step(_pair()[:, 0], model.initial_state(3))


def test_bad_input_is_a_clear_error():
    model = _model()
    with pytest.raises(ValueError, match=r"\(B, L, 2\)"):
        model(torch.ones(2, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="integer tokens"):
        model(torch.ones(2, 5, 2, dtype=torch.double))
    with pytest.raises(ValueError, match="pool"):
        DualEncoder(2, vocab_size=VOCAB, pool="none")
    with pytest.raises(ValueError, match="vocab_size"):
        DualEncoder(2, vocab_size=None)


def test_runner_builds_the_dual_encoder_for_a_pair_task_and_trains_a_step():
    items = [(_pair()[b], torch.tensor(b % 2)) for b in range(3)]
    task = Task("pairs", "classify", items, None, items, d_output=2, vocab_size=VOCAB, variable_length=True,
                info={"pair": True, "pad_token": 0})  # fmt: skip
    cfg = from_dict({"model": {"layer": "s4d", "d_model": 8, "n_layers": 1, "layer_options": {"d_state": 8}}})
    model = build_model(cfg, task)
    assert isinstance(model, DualEncoder)
    x, y, lengths = pad_collate(items)
    loss = torch.nn.functional.cross_entropy(model(x, lengths), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
