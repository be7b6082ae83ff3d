"""The generated tasks: seeded and reproducible, the right shapes, and the targets the papers define."""

import pytest
import torch

from ssmkit.data.registry import get_task


def test_copying_targets_are_the_first_symbols_at_the_end():
    task = get_task("copying", length=50, n_tokens=5, n_symbols=4, n_train=3)
    x, y = task.train[1]
    assert x.shape == y.shape == (50,) and x.dtype == y.dtype == torch.long
    assert torch.equal(y[-5:], x[:5]) and (y[:-5] == -100).all()
    assert x[50 - 6] == 5 and (x[5:44] == 0).all() and task.vocab_size == 6 and task.kind == "classify_steps"


def test_selective_copying_recalls_symbols_in_order_at_the_markers():
    task = get_task("selective_copying", length=60, n_tokens=4, n_symbols=8, n_train=5)
    for i in range(5):
        x, y = task.train[i]
        context = x[:-4]
        assert torch.equal(y[-4:], context[context > 0]) and (x[-4:] == 9).all() and (y[:-4] == -100).all()
    positions = [tuple((task.train[i][0][:-4] > 0).nonzero().flatten().tolist()) for i in range(5)]
    assert len(set(positions)) > 1  # positions vary from item to item


def test_adding_target_is_the_sum_of_the_marked_values():
    task = get_task("adding", length=40, n_train=4)
    x, y = task.train[2]
    assert x.shape == (40, 2) and y.shape == (1,) and y.dtype == torch.float32 and task.kind == "regress"
    marked = x[:, 1].nonzero().flatten()
    assert len(marked) == 2 and marked[0] < 20 <= marked[1]
    assert torch.isclose(y[0], x[marked, 0].sum())
    assert task.info["tolerance"] == 0.04


def test_adding_baseline_mse_is_the_variance_of_the_sum():
    """Answering the mean (1) scores Var(U1 + U2) = 1/6: the bar a model must beat (Le et al. 2015, Fig. 2)."""
    task = get_task("adding", length=30, n_train=4000)
    targets = torch.stack([task.train[i][1] for i in range(4000)])
    assert abs(targets.mean().item() - 1.0) < 0.03
    assert abs((targets - 1.0).pow(2).mean().item() - task.info["baseline_mse"]) < 0.01


@pytest.mark.parametrize("name", ["copying", "selective_copying", "adding"])
def test_seeded_reproducible_and_splits_differ(name):
    a, b = get_task(name, length=40, seed=3), get_task(name, length=40, seed=3)
    assert torch.equal(a.train[7][0], b.train[7][0]) and torch.equal(a.test[7][1], b.test[7][1])
    assert not torch.equal(a.train[7][0], a.val[7][0])
    assert not torch.equal(a.train[7][0], get_task(name, length=40, seed=4).train[7][0])


def test_bad_options_are_clear():
    with pytest.raises(ValueError, match="too short"):
        get_task("copying", length=10, n_tokens=5)
    with pytest.raises(ValueError, match="valid options"):
        get_task("adding", n_tokens=3)
    with pytest.raises(IndexError):
        get_task("adding", length=10, n_train=2).train[2]
