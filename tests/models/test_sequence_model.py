"""The deep model: streaming == parallel for every layer kind and block variant, padding never leaks, heads' shapes."""

import copy

import pytest
import torch

from ssmkit.models import LAYERS, SequenceModel, make_layer, pool

# small, causal options for each layer kind; a layer added to LAYERS without an entry here is tested with defaults
SMALL_OPTIONS = {
    "transformer": {"n_heads": 2, "causal": True},
    **{name: {"d_state": 8} for name in ("s4", "s4d", "lssl", "lru", "complex_diag_exp", "complex_diag")},
    **{name: {"d_state": 8} for name in ("linear_dense", "tanh_rnn")},
}
KINDS = sorted(LAYERS)


def _model(layer, norm="layer", prenorm=False, ff="glu", head="steps", pool_mode="none", tokens=False, **kw):
    torch.manual_seed(0)
    return SequenceModel(
        d_output=3,
        d_input=2,
        vocab_size=7 if tokens else None,
        d_model=8,
        n_layers=2,
        layer=layer,
        layer_options=SMALL_OPTIONS.get(layer, {}),
        norm=norm,
        prenorm=prenorm,
        ff=ff,
        head=head,
        pool=pool_mode,
        **kw,
    ).double()


def _warm_up_batchnorm(model, u):
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(u * 2 + 1 if u.is_floating_point() else u)  # running stats far from (0, 1): eval BN is no identity
    model.eval()


def _stream(model, u, chunks):
    state = model.initial_state(u.shape[0])
    steps = []
    for t in range(u.shape[1]):
        y_t, state = model.step(u[:, t], state)
        steps.append(y_t)
    state = model.initial_state(u.shape[0])
    outs, start = [], 0
    for size in chunks:
        y_c, state = model.step_chunk(u[:, start : start + size], state)
        outs.append(y_c)
        start += size
    return torch.stack(steps, 1), torch.cat(outs, 1)


# every layer kind in the deep S4 block with BatchNorm (the hard case for streaming); the other block variants once
BLOCK_CASES = [(kind, "batch", False, "glu") for kind in KINDS] + [
    (kind, norm, prenorm, ff)
    for kind in ("s4d", "lstm")
    for norm, prenorm, ff in [("layer", False, "glu"), ("batch", True, "mlp"), ("none", True, "none")]
]


@pytest.mark.parametrize("layer,norm,prenorm,ff", BLOCK_CASES, ids=["-".join(map(str, c)) for c in BLOCK_CASES])
def test_streaming_equals_parallel_per_step_head(layer, norm, prenorm, ff):
    model = _model(layer, norm, prenorm, ff)
    u = torch.randn(2, 16, 2, dtype=torch.float64)
    _warm_up_batchnorm(model, u)
    with torch.no_grad():
        y = model(u)  # (B, L, 3)
        y_step, y_chunk = _stream(model, u, [5, 1, 10])
    assert y.shape == (2, 16, 3)
    torch.testing.assert_close(y_step, y, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(y_chunk, y, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("layer", KINDS)
def test_step_leaves_the_state_it_was_given_unchanged(layer):
    """A kept state can be stepped from again (branching decoders; the streaming benchmark's control step)."""
    model = _model(layer, "batch")
    u = torch.randn(2, 5, 2, dtype=torch.float64)
    _warm_up_batchnorm(model, u)
    with torch.no_grad():
        state = model.initial_state(2)
        for t in range(3):
            _, state = model.step(u[:, t], state)
        kept = copy.deepcopy(state)
        y_once, _ = model.step(u[:, 3], state)
        y_again, _ = model.step(u[:, 3], state)
    torch.testing.assert_close(state, kept, rtol=0, atol=0)
    torch.testing.assert_close(y_again, y_once, rtol=0, atol=0)


PREFIX_CASES = [(kind, "mean", "sequence") for kind in KINDS] + [
    ("s4d", "last", "sequence"),
    ("s4", "last", "forecast"),
]


@pytest.mark.parametrize("layer,pool_mode,head", PREFIX_CASES, ids=["-".join(c) for c in PREFIX_CASES])
def test_streaming_prefix_predictions_equal_parallel(layer, pool_mode, head):
    model = _model(layer, "batch", head=head, pool_mode=pool_mode, tokens=True, horizon=4)
    u = torch.randint(0, 7, (3, 17))
    _warm_up_batchnorm(model, u)
    with torch.no_grad():
        y_step, y_chunk = _stream(model, u, [4, 13])
        for t in (0, 7, 16):  # every prefix's streamed prediction equals the parallel pass on that prefix
            y = model(u[:, : t + 1])
            torch.testing.assert_close(y_step[:, t], y, rtol=1e-9, atol=1e-10)
            torch.testing.assert_close(y_chunk[:, t], y, rtol=1e-9, atol=1e-10)
    assert y.shape == ((3, 4, 3) if head == "forecast" else (3, 3))


PADDING_CASES = [(kind, kind, SMALL_OPTIONS.get(kind, {})) for kind in KINDS] + [
    ("transformer_bidirectional", "transformer", {"n_heads": 2, "causal": False}),
    ("s4d_bidirectional", "s4d", {"d_state": 8, "bidirectional": True}),
    ("s4_bidirectional", "s4", {"d_state": 8, "bidirectional": True}),
    ("lru_bidirectional", "lru", {"d_state": 8, "bidirectional": True}),
]


PADDING_CASES = [(*case, "layer", "mean") for case in PADDING_CASES] + [
    (*case, "batch", "last") for case in PADDING_CASES if case[0] in ("s4d_bidirectional", "lstm", "transformer")
]


@pytest.mark.parametrize(
    "case,layer,options,norm,pool_mode", PADDING_CASES, ids=[f"{c[0]}-{c[3]}-{c[4]}" for c in PADDING_CASES]
)
def test_padding_never_leaks(case, layer, options, norm, pool_mode):
    """A padded batch gives each row what that row alone gives, in training mode (BatchNorm stats over valid tokens)."""
    torch.manual_seed(0)
    model = SequenceModel(
        3, d_input=2, d_model=8, n_layers=2, layer=layer, layer_options=options, norm=norm, pool=pool_mode
    ).double()
    model.train()
    u = torch.randn(2, 12, 2, dtype=torch.float64)
    lengths = torch.tensor([12, 7])
    u_junk = u.clone()
    u_junk[1, 7:] = 1e3  # garbage in the padding
    y = model(u_junk, lengths=lengths)
    # the reference: row 1 truncated to its length, batched alone with row 0's valid tokens for BatchNorm's statistics
    y_same = model(u, lengths=lengths)
    torch.testing.assert_close(y, y_same, rtol=1e-10, atol=1e-10)
    if norm == "layer":  # per-token norms: each row alone equals its batched result
        torch.testing.assert_close(model(u[1:, :7]), y[1:], rtol=1e-9, atol=1e-10)


def test_pool_with_lengths():
    x = torch.arange(2 * 4 * 1, dtype=torch.float64).view(2, 4, 1)
    lengths = torch.tensor([4, 2])
    assert pool(x, "mean", lengths).flatten().tolist() == [1.5, 4.5]
    assert pool(x, "last", lengths).flatten().tolist() == [3.0, 5.0]
    assert pool(x, "none", lengths) is x


def test_paper_defaults_and_errors():
    with pytest.raises(ValueError, match="valid layers"):
        make_layer("nope", 8)
    with pytest.raises(ValueError, match="valid options"):
        make_layer("lstm", 8, bogus=1)
    with pytest.raises(ValueError, match="pool"):
        SequenceModel(3, layer="lstm", head="steps", pool="mean")
    with pytest.raises(TypeError, match="tokens"):
        SequenceModel(3, vocab_size=5, layer="lstm")(torch.randn(1, 4, 1))
    assert not SequenceModel(3, layer="lstm").blocks[0].prenorm  # deep S4's postnorm unless the layer is LRU-family
    assert not SequenceModel(3, layer="s4", layer_options={"d_state": 8}).blocks[0].prenorm  # deep S4: postnorm
    assert SequenceModel(3, layer="lru", layer_options={"d_state": 8}).blocks[0].prenorm  # deep LRU: prenorm
