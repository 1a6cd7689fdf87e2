import pytest

from tinyfer.core.config import TrainConfig, apply_override, from_dict
from tinyfer.errors import ConfigError


def test_yaml_with_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: base\nclassify:\n  epochs: 3\n")
    overrides = ["classify.epochs=7", "augment.hflip=false", "trainer.devices=2",
                 "data.labels=[happy, sad]"]  # fmt: skip
    cfg = TrainConfig.from_yaml(path, overrides)
    assert cfg.model.name == "base" and cfg.classify.epochs == 7
    assert cfg.augment.hflip is False and cfg.trainer.devices == 2
    assert cfg.data.labels == ["happy", "sad"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"clasify": {}}, "unknown key.*clasify.*valid keys: data, model"),
        (
            {"classify": {"epoch": 3}},
            "classify.epoch; valid keys in classify: init, pretrained, pretrained_head, encoder_lr",
        ),
        ({"classify": {"epochs": "ten"}}, "classify.epochs: expected a whole number"),
        ({"classify": {"init": "imagenet"}}, "classify.init: 'imagenet' is not allowed"),
        ({"augment": {"hflip": "yes"}}, "augment.hflip: expected true or false"),
        ({"model": "tiny"}, "model: expected a mapping"),
    ],
)
def test_bad_configs_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(TrainConfig, data)


def test_bad_files_and_overrides(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        TrainConfig.from_yaml(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        TrainConfig.from_yaml(bad)
    with pytest.raises(ConfigError, match="key=value"):
        apply_override({}, "classify.epochs")


def test_shipped_configs_load():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert {p.stem for p in configs} >= {"demo", "mug", "fer2013", "ckplus"}
    for path in configs:
        TrainConfig.from_yaml(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("classify.epochs=-1", r"classify.epochs: -1 is out of range; allowed: \[1, inf\)"),
        ("classify.epochs=0", r"classify.epochs: 0 is out of range"),
        ("pretrain.epochs=-3", r"pretrain.epochs: -3 is out of range"),
        ("trainer.batch_size=0", r"trainer.batch_size: 0 is out of range; allowed: \[1, 65536\]"),
        ("data.img_size=0", r"data.img_size: 0 is out of range; allowed: \[16, 512\]"),
        ("data.img_size=7", r"data.img_size: 7 is out of range"),
        ("classify.lr=0", r"classify.lr: 0.0 is out of range; allowed: \(0, inf\)"),
        ("augment.context_fill=1.5", r"augment.context_fill: 1.5 is out of range"),
        ("split.val_fraction=0.9", r"must leave faces to train on"),
        ("trainer.devices=0", r"trainer.devices: 0 is out of range"),
    ],
)
def test_numbers_out_of_range_are_refused_naming_key_and_range(override, message):
    data = {}
    apply_override(data, override)
    with pytest.raises(ConfigError, match=message):
        from_dict(TrainConfig, data)


def test_every_number_in_a_config_has_a_range():
    import dataclasses
    import typing

    from tinyfer.core.config import RANGES

    def numbers(cls, where=""):
        for f in dataclasses.fields(cls):
            tp = typing.get_type_hints(cls)[f.name]
            key = f"{where}.{f.name}" if where else f.name
            inner = typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
            if dataclasses.is_dataclass(tp) or dataclasses.is_dataclass(inner):
                yield from numbers(tp if inner is None else inner, key)
            elif tp in (int, float) or int in typing.get_args(tp) or float in typing.get_args(tp):
                yield key

    assert sorted(set(numbers(TrainConfig)) - set(RANGES)) == []
    assert sorted(set(RANGES) - set(numbers(TrainConfig))) == []  # no range of a stale key


def test_several_datasets_in_one_data_section():
    data = {"path": ["a/ferplus", "b/ckplus"], "format": ["ferplus", "ckplus"], "weights": [3, 1]}
    cfg = from_dict(TrainConfig, {"data": data})
    assert [(s.path, s.format, s.weights) for s in cfg.data.sources()] == [
        ("a/ferplus", "ferplus", []), ("b/ckplus", "ckplus", []),
    ]  # fmt: skip
    assert from_dict(TrainConfig, {"data": {"path": "x"}}).data.paths == ["x"]
    for data, message in (
        ({"path": ["a", "b"], "format": ["ferplus"]}, "1 layout.*for 2 path"),
        ({"path": ["a", "b"], "weights": [1.0]}, "1 weight.*for 2 path"),
        ({"path": ["a", "b"], "weights": [1.0, 0]}, "data.weights: 0.0 is out of range"),
        ({"path": ["a"], "format": ["cifar"]}, "'cifar' is not allowed"),
    ):
        with pytest.raises(ConfigError, match=message):
            from_dict(TrainConfig, {"data": data})


def test_the_recorded_command_pastes_back_into_a_shell(monkeypatch):
    import shlex
    import sys

    from tinyfer.core.config import command_line

    argv = ["/some/venv/bin/tinyfer", "experiment", "my grid.yaml", "--set",
            "experiment.grid={augment: [on, off]}"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    line = command_line()
    assert line.startswith("tinyfer experiment 'my grid.yaml' --set ")
    assert shlex.split(line) == ["tinyfer", *argv[1:]]
