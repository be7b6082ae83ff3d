"""Every experiment in configs/: it loads, every key resolves (task, task options, layer, layer options), its model
builds with the head its task needs and runs a tiny batch, CPU variants stay small, and the LRU configs carry the
LRU paper's ring per task. No data is read: each task is replaced by a stand-in with the same kind and sizes
(checked against the real loaders on the files in ../shared/data), or, for generated tasks, drawn tiny."""

from __future__ import annotations

import functools
import inspect
import math
import re

import pytest
import torch

from ssmkit.data.base import Task
from ssmkit.data.forecast import SPECS, calendar_features
from ssmkit.data.listops import VOCAB_SIZE as LISTOPS_VOCAB
from ssmkit.data.registry import TASKS, get_task
from ssmkit.data.text import BYTE_VOCAB
from ssmkit.models import SequenceModel
from ssmkit.models.block import LAYERS, TiedDropout, make_layer
from ssmkit.models.dual import DualEncoder
from ssmkit.train.build import build_model, count_params
from ssmkit.train.config import experiment_names, load_config

NAMES = experiment_names()
CPU_NAMES = [n for n in NAMES if n.endswith("_cpu")]
CPU_PARAM_BOUND = 1_000_000  # the CPU variants hold 20 k - 120 k parameters; the GPU configs 0.1 M - 8 M

FORECAST = set(SPECS)  # forecasting tasks (data/forecast.py)
# task name -> (kind, d_output, d_input, vocab_size, info, L): what the real loader reports, without reading data
STAND_INS = {
    "smnist": ("classify", 10, 1, None, {}, 784),
    "psmnist": ("classify", 10, 1, None, {}, 784),
    "scifar": ("classify", 10, 3, None, {}, 1024),
    "scifar_gray": ("classify", 10, 1, None, {}, 1024),
    "listops": ("classify", 10, 1, LISTOPS_VOCAB, {}, 2000),
    "lra_text": ("classify", 2, 1, BYTE_VOCAB, {}, 4096),
    "lra_retrieval": ("classify", 2, 1, BYTE_VOCAB, {"pair": True, "pad_token": 0}, 4000),
    "pathfinder": ("classify", 2, 1, None, {}, None),  # L = resolution²
    "pathx": ("classify", 2, 1, None, {}, 128 * 128),
    "sc10": ("classify", 10, 1, None, {}, 16000),
    "sc35": ("classify", 35, 1, None, {}, 16000),
}
GENERATED_SIZES = {"n_train": 4, "n_val": 2, "n_test": 2}


def stand_in(cfg) -> Task:
    """A Task with the kind and sizes cfg's task has, and no data (generated tasks: the real generator, tiny)."""
    name, opts = cfg.task.name, dict(cfg.task.options)
    if name in FORECAST:  # univariate (S): the target column, plus Informer's calendar features if asked for
        if opts.get("features", "S") != "S":
            pytest.fail(f"{cfg.experiment}: add a multivariate stand-in for {name}")
        marks = calendar_features(["2016-07-01 00:00:00"], SPECS[name].freq).shape[1]
        d_in = 1 + (marks if opts.get("time_features") else 0)
        horizon, pad = opts.get("horizon", 24), opts.get("pad_future", False)
        info = {"horizon": horizon, "pad_future": pad}
        return Task(name, "forecast", [], None, [], d_output=1, d_input=d_in, info=info)
    if name in STAND_INS:
        kind, d_out, d_in, vocab, info, _ = STAND_INS[name]
        return Task(name, kind, [], None, [], d_output=d_out, d_input=d_in, vocab_size=vocab, info=dict(info))
    module, fn = TASKS[name]
    params = inspect.signature(getattr(__import__(module, fromlist=[fn]), fn)).parameters
    if not set(GENERATED_SIZES) <= set(params):
        pytest.fail(f"{cfg.experiment}: task {name!r} needs a stand-in in tests/test_configs.py")
    return get_task(name, **(opts | GENERATED_SIZES))


ONE_BLOCK = ("model.n_layers=1",)  # the blocks of a config are alike (each builds its own HiPPO init): one is checked


@functools.cache
def built(name: str, overrides: tuple[str, ...] = ()) -> torch.nn.Module:
    """The model of experiment `name` (with overrides) for its stand-in task, built once per test session."""
    cfg = load_config(name, list(overrides))
    torch.manual_seed(0)
    return build_model(cfg, stand_in(cfg))


def tiny_input(cfg, task: Task, B: int = 2, L: int = 24) -> torch.Tensor:
    if task.info.get("pair"):
        u = torch.randint(1, task.vocab_size, (B, L, 2))
        u[0, L // 2 :, 1] = 0  # a shorter second document
        return u
    if task.vocab_size is not None:
        return torch.randint(1, task.vocab_size, (B, L))
    if task.kind == "forecast" and task.info["pad_future"]:
        L = L + task.info["horizon"]
    return torch.randn(B, L, task.d_input)


@pytest.mark.parametrize("name", NAMES)
def test_every_key_resolves(name):
    cfg = load_config(name)  # unknown sections / keys / wrong types fail here
    assert cfg.task.name in TASKS, f"{name}: unknown task {cfg.task.name!r}"
    module, fn = TASKS[cfg.task.name]
    params = inspect.signature(getattr(__import__(module, fromlist=[fn]), fn)).parameters
    unknown = set(cfg.task.options) - set(params)
    assert not unknown, f"{name}: task {cfg.task.name!r} has no option(s) {sorted(unknown)}"
    assert cfg.model.layer in LAYERS, f"{name}: unknown layer {cfg.model.layer!r}"
    make_layer(cfg.model.layer, 4, **cfg.model.layer_options)  # unknown or invalid layer options fail here


@pytest.mark.parametrize("name", NAMES)
def test_model_builds_with_the_head_of_its_task(name):
    """The model at full width (one of its n_layers alike blocks) is built and its encoder / head sizes checked; a
    narrow copy (same task, pooling, head and layer kind; width 8, one block, N <= 8) runs a tiny batch to check the
    output shape."""
    cfg = load_config(name)
    task = stand_in(cfg)
    model = built(name, ONE_BLOCK)
    if task.info.get("pair"):
        assert isinstance(model, DualEncoder)
        assert model.decoder[-1].out_features == task.d_output
    else:
        assert isinstance(model, SequenceModel)
        if task.vocab_size is not None:
            assert isinstance(model.encoder, torch.nn.Embedding) and model.encoder.num_embeddings == task.vocab_size
        else:
            assert isinstance(model.encoder, torch.nn.Linear) and model.encoder.in_features == task.d_input
        per_step = task.kind in ("classify_steps", "regress_steps") or task.info.get("pad_future")
        assert model.head.linear.out_features == task.d_output * (
            task.info["horizon"] if task.kind == "forecast" and not per_step else 1
        )
    shrink = ["model.d_model=8", "model.n_layers=1"]
    if "d_state" in cfg.model.layer_options:
        shrink.append(f"model.layer_options.d_state={min(8, cfg.model.layer_options['d_state'])}")
    small = build_model(load_config(name, shrink), task).eval()
    u = tiny_input(cfg, task)
    with torch.no_grad():
        y = small(u)
    B = u.shape[0]
    if task.kind == "classify":
        assert small.head_kind == "sequence" and small.pool_mode == cfg.model.pool
        assert y.shape == (B, task.d_output)
    elif task.kind in ("classify_steps", "regress_steps"):
        assert small.head_kind == "steps"
        assert y.shape[:2] == u.shape[:2] and y.shape[-1] == task.d_output
    else:  # forecast: the last `horizon` outputs (masked future), or the forecast head on the pooled window
        assert y.shape == (B, task.info["horizon"], task.d_output)
        assert small.pool_mode == ("none" if task.info["pad_future"] else cfg.model.pool)


@pytest.mark.parametrize("name", CPU_NAMES)
def test_cpu_variants_are_small(name):
    one, two = count_params(built(name, ONE_BLOCK)), count_params(built(name, ("model.n_layers=2",)))
    n = one + (load_config(name).model.n_layers - 1) * (two - one)  # the blocks are alike
    assert 0 < n < CPU_PARAM_BOUND, f"{name}: {n} parameters is not CPU-sized (bound {CPU_PARAM_BOUND})"


# every experiment of the S4, S4D and LSSL papers that issue 6 asks a config for -> the task it must run (LRU: below)
LRA = {"listops": "listops", "text": "lra_text", "retrieval": "lra_retrieval", "image": "scifar_gray",
       "pathfinder": "pathfinder", "pathx": "pathx"}  # fmt: skip
PAPER_EXPERIMENTS = (
    {f"s4_{t}": task for t, task in LRA.items()}
    | {f"s4d_{t}": task for t, task in LRA.items()}
    | {"s4_smnist": "smnist", "s4_psmnist": "psmnist", "s4_scifar": "scifar", "s4d_scifar": "scifar"}
    | {"s4_sc10": "sc10", "s4_etth1": "etth1", "s4_etth2": "etth2", "s4_ettm1": "ettm1", "s4_weather": "weather"}
    | {"lssl_smnist": "smnist", "lssl_psmnist": "psmnist", "lssl_scifar": "scifar"}
)


@pytest.mark.parametrize("name", sorted(PAPER_EXPERIMENTS))
def test_every_paper_experiment_has_a_config_and_a_cpu_variant(name):
    assert name in NAMES and f"{name}_cpu" in NAMES, f"configs/{name}.yaml or configs/{name}_cpu.yaml is missing"
    for variant in (name, f"{name}_cpu"):
        cfg = load_config(variant)
        assert cfg.task.name == PAPER_EXPERIMENTS[name], f"{variant} runs {cfg.task.name!r}"
        assert cfg.model.layer == name.split("_")[0], f"{variant} uses layer {cfg.model.layer!r}"


# the LRU paper's ring per task (Orvieto et al. 2023): (r_min, r_max, max_phase, bidirectional)
LRU_RINGS = {
    "listops": (0.0, 0.99, 2 * math.pi, False),
    "text": (0.5, 0.9, 2 * math.pi, False),
    "retrieval": (0.5, 0.9, 2 * math.pi, False),
    "scifar": (0.9, 0.999, 2 * math.pi, False),  # the LRU paper's "Image" is colour sCIFAR
    "pathfinder": (0.9, 0.999, 2 * math.pi, True),
    "pathx": (0.999, 0.9999, math.pi / 10, True),
}
LRU_NAMES = [n for n in NAMES if (m := re.fullmatch(r"lru_(\w+?)(_cpu)?", n)) and m.group(1) in LRU_RINGS]


def test_every_lru_lra_task_has_a_config_and_a_cpu_variant():
    assert {f"lru_{t}" for t in LRU_RINGS} | {f"lru_{t}_cpu" for t in LRU_RINGS} <= set(NAMES)


@pytest.mark.parametrize("name", LRU_NAMES)
def test_lru_configs_carry_the_papers_ring(name):
    cfg = load_config(name)
    r_min, r_max, max_phase, bidirectional = LRU_RINGS[re.fullmatch(r"lru_(\w+?)(_cpu)?", name).group(1)]
    opts = cfg.model.layer_options
    assert cfg.model.layer == "lru"
    assert opts["r_min"] == r_min and opts["r_max"] == r_max
    assert opts["max_phase"] == pytest.approx(max_phase, rel=1e-12)
    assert opts.get("bidirectional", False) is bidirectional
    assert cfg.model.norm == "batch" and cfg.model.prenorm is True  # pre-norm BatchNorm blocks
    if not name.endswith("_cpu"):
        assert cfg.model.n_layers == 6
    if name.startswith("lru_scifar"):
        assert cfg.task.name == "scifar"  # colour, not LRA's grey image
    (block,) = built(name, ONE_BLOCK).blocks
    assert (block.layer.r_min, block.layer.r_max, block.layer.bidirectional) == (r_min, r_max, bidirectional)
    assert block.layer.max_phase == pytest.approx(max_phase, rel=1e-12)


@pytest.mark.parametrize(
    "task,options",
    [
        ("smnist", {}),
        ("scifar_gray", {}),
        ("pathfinder", {"resolution": 32}),
        ("etth1", {"time_features": True, "pad_future": True, "horizon": 24}),
    ],
)
def test_stand_ins_match_the_real_loaders(shared_data, task, options):
    real = get_task(task, data_dir=shared_data, **options)
    cfg = load_config("tiny", [f"task.name={task}", f"task.options={options}"])
    fake = stand_in(cfg)
    assert (fake.kind, fake.d_output, fake.d_input, fake.vocab_size) == (
        real.kind,
        real.d_output,
        real.d_input,
        real.vocab_size,
    )
    x, _ = real.train[0]
    L = STAND_INS.get(task, (None,) * 6)[5]
    if L is not None:
        assert x.shape[0] == L or real.variable_length
    assert bool(fake.info.get("pair")) == bool(real.info.get("pair"))


@pytest.mark.parametrize("name", ["s4_image", "s4_retrieval"])
def test_tie_dropout_reaches_every_block(name):
    """model.tie_dropout (the S4 code's one mask per sequence and channel) reaches the blocks of both model kinds."""
    model = built(name, ("model.n_layers=2", "model.tie_dropout=true", "model.dropout=0.5"))
    assert all(isinstance(block.dropout, TiedDropout) for block in model.blocks)
    x = torch.ones(3, 16, model.d_model)
    mask = model.blocks[0].dropout.train()(x)
    assert torch.equal(mask, mask[:, :1].expand_as(mask))  # the same mask at every step
    as_configured = isinstance(built(name, ONE_BLOCK).blocks[0].dropout, TiedDropout)
    assert as_configured == load_config(name).model.tie_dropout  # s4_image: true (the repo's); s4_retrieval: false
