"""train.max_eval_batches scores a fixed, seeded, evenly spread subset of a split, not its first batches."""

import torch
from torch import nn

from ssmkit.train import distributed
from ssmkit.train.build import eval_subset
from ssmkit.train.config import load_config
from ssmkit.train.loop import _autocast, _evaluate


def test_subset_is_fixed_seeded_and_takes_one_item_from_each_equal_run():
    n, k = 100, 10  # a split ordered by class: items 10c .. 10c + 9 are class c
    first = eval_subset(n, k, seed=0)
    assert first == eval_subset(n, k, seed=0)  # the same items at every evaluation
    assert first != eval_subset(n, k, seed=1)
    for seed in range(5):
        idx = eval_subset(n, k, seed)
        assert sorted({i // 10 for i in idx}) == list(range(10))  # every class, once
    assert eval_subset(7, 3, 0)[0] in range(0, 2) and eval_subset(7, 3, 0)[-1] in range(4, 7)
    assert eval_subset(5, 8, 0) == [0, 1, 2, 3, 4]  # asking for more than the split: all of it


class _Recorder(nn.Module):
    """A classifier that remembers which items it saw (the item index is its input) and predicts class 0."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, lengths=None):
        self.seen += x[:, 0, 0].long().tolist()
        return torch.zeros(x.shape[0], 10).index_fill_(1, torch.tensor([0]), 1.0)


def test_capped_evaluation_of_a_class_ordered_split_is_not_a_prefix_of_one_class():
    data = [(torch.full((1, 1), float(i)), torch.tensor(i // 10)) for i in range(100)]  # class c = items 10c..10c+9
    cfg = load_config("tiny", ["train.eval_batch_size=4", "train.max_eval_batches=5", "train.seed=3"])
    d = distributed.Dist(0, 1, torch.device("cpu"))
    model = _Recorder()
    metrics = [_evaluate(model, data, cfg, "classify", None, d, None, _autocast("32", d.device)) for _ in range(2)]
    assert model.seen[:20] == model.seen[20:] == eval_subset(100, 20, 3)  # 5 batches x 4, same items both times
    assert sorted({i // 10 for i in model.seen}) == list(range(10))  # every class scored, two items each
    assert metrics[0]["acc"] == metrics[1]["acc"] == 0.1  # a prefix would have scored 1.0 (all class 0)
