"""Experiment configs: every shipped config loads, overrides are typed, unknown keys and experiments list valid ones."""

import pytest

from ssmkit.train.config import apply_overrides, experiment_names, from_dict, load_config


def test_every_shipped_config_loads():
    names = experiment_names()
    assert "tiny" in names
    for name in names:
        cfg = load_config(name)
        assert cfg.experiment == name


def test_overrides_are_parsed_as_yaml_and_typed():
    cfg = load_config(
        "tiny",
        [
            "model.d_model=64",
            "optim.lr=1e-3",
            "model.prenorm=true",
            "train.steps_per_epoch=null",
            "task.options.length=50",
            "model.layer_options.forget_bias=2",
            "optim.weight_decay=0",
        ],
    )
    assert cfg.model.d_model == 64 and cfg.optim.lr == 1e-3 and cfg.model.prenorm is True
    assert cfg.train.steps_per_epoch is None and cfg.task.options["length"] == 50
    assert cfg.model.layer_options == {"forget_bias": 2} and isinstance(cfg.optim.weight_decay, float)


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"unknown key\(s\) \['model.widht'\].*valid keys: layer, layer_options, d_model"
    ):
        load_config("tiny", ["model.widht=3"])
    with pytest.raises(ValueError, match="valid keys: experiment, description, task, model, optim, schedule, train"):
        load_config("tiny", ["trainer.epochs=3"])


def test_unknown_experiment_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid experiments: .*tiny"):
        load_config("no_such_experiment")


def test_wrong_types_and_malformed_overrides():
    with pytest.raises(ValueError, match="model.d_model must be int"):
        load_config("tiny", ["model.d_model=abc"])
    with pytest.raises(ValueError, match="train.epochs must be int"):
        load_config("tiny", ["train.epochs=1.5"])
    with pytest.raises(ValueError, match="section.key=value"):
        load_config("tiny", ["model.d_model"])
    with pytest.raises(ValueError, match=r"override 'model.layer_options=\{d_state:'.* not valid YAML"):
        load_config("tiny", ["model.layer_options={d_state:"])  # what an unquoted {d_state: 32} leaves after the shell
    with pytest.raises(ValueError, match="task.options must be a mapping"):
        from_dict({"task": {"options": 3}})


def test_apply_overrides_does_not_touch_its_input():
    raw = {"model": {"d_model": 8}}
    assert apply_overrides(raw, ["model.d_model=16"])["model"]["d_model"] == 16 and raw["model"]["d_model"] == 8
