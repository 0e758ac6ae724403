"""Loading train configs: YAML rules, overrides, and one report of every mistake."""

import functools
import pickle

import numpy as np
import pytest

from dl_cli.checks import ConfigError
from dl_cli.config import config_to_dict, dump_config, load_config
from dl_cli.config.overrides import apply_overrides
from dl_cli.config.validation import NESTED_LAYERS, validate
from dl_cli.config.yaml12 import read_yaml
from dl_cli.metrics import evaluate, reported_metrics
from dl_cli.nn.model import Model
from dl_cli.registry import LAYERS
from dl_cli.schema import (
    CheckpointConfig,
    Config,
    DataConfig,
    EarlyStoppingConfig,
    ModelConfig,
    SplitConfig,
    TrainConfig,
)

EXAMPLE = """\
name: digits-mlp
seed: 0
data:
  dataset: digits
  split: {val: 0.2, test: 0.2, stratify: true}
  preprocess: [standardize]
model:
  init: he_normal
  layers:
    - {type: affine, units: 128}
    - {type: batchnorm}
    - relu
    - {type: dropout, drop_rate: 0.3}
    - {type: affine, units: 10}
  loss: softmax_cross_entropy
regularization: {l2: 1.0e-4}
optimizer: {type: adam, lr: 1.0e-3}
schedule: {type: step, every: 10, gamma: 0.5}
train: {epochs: 30, batch_size: 64, clip_grad_norm: null,
        early_stopping: {monitor: val/acc, patience: 8}}
checkpoint: {monitor: val/acc, mode: max}
"""


@pytest.fixture
def example(tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(EXAMPLE)
    return path


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(path, overrides=()):
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    return caught.value.errors


def error_at(errors, key_path):
    """The one error reported under ``key_path``."""
    found = [e for e in errors if e.startswith(f"{key_path}: ")]
    assert len(found) == 1, f"no single error at {key_path} in:\n" + "\n".join(errors)
    return found[0]


# -- the example config -----------------------------------------------------------------
def test_example_loads_into_nested_dataclasses(example):
    cfg = load_config(example)
    assert isinstance(cfg, Config)
    assert cfg.name == "digits-mlp" and cfg.seed == 0
    assert isinstance(cfg.data, DataConfig) and cfg.data.dataset == "digits"
    assert cfg.data.split == SplitConfig(val=0.2, test=0.2, stratify=True)
    assert cfg.data.preprocess == ["standardize"] and cfg.data.augment == []
    assert isinstance(cfg.model, ModelConfig)
    assert cfg.model.layers == [
        {"type": "affine", "units": 128}, {"type": "batchnorm"}, "relu",
        {"type": "dropout", "drop_rate": 0.3}, {"type": "affine", "units": 10},
    ]
    assert cfg.regularization.l2 == 1e-4 and cfg.regularization.l1 == 0.0
    assert cfg.optimizer == {"type": "adam", "lr": 1e-3}
    assert cfg.schedule == {"type": "step", "every": 10, "gamma": 0.5}
    assert isinstance(cfg.train, TrainConfig)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.clip_grad_norm) == (30, 64, None)
    assert cfg.train.early_stopping == EarlyStoppingConfig(monitor="val/acc", patience=8)
    assert cfg.checkpoint == CheckpointConfig(monitor="val/acc", mode="max")


def test_dump_round_trips_to_an_equal_config(example, tmp_path):
    cfg = load_config(example)
    again = load_config(write(tmp_path, dump_config(cfg), "dumped.yaml"))
    assert again == cfg
    assert config_to_dict(again) == config_to_dict(cfg)


def test_config_to_dict_fills_every_default(example):
    d = config_to_dict(load_config(example))
    assert d["train"]["dtype"] == "float32" and d["train"]["log_every"] == 0
    assert d["train"]["early_stopping"] == {"monitor": "val/acc", "mode": "auto",
                                            "patience": 8, "min_delta": 0.0}
    assert d["runs_dir"] == "runs" and d["data"]["augment"] == []
    assert isinstance(d["model"], dict) and isinstance(d["model"]["layers"], list)


def test_strings_that_look_like_floats_survive_the_round_trip(example, tmp_path):
    cfg = load_config(example, ["name='1e-3'"])
    assert cfg.name == "1e-3"
    assert load_config(write(tmp_path, dump_config(cfg), "dumped.yaml")).name == "1e-3"


# -- YAML rules -------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [("1e-3", 1e-3), ("1.0e-4", 1e-4), ("-2E5", -2e5),
                                        (".5e1", 5.0), ("+3e2", 300.0)])
def test_yaml12_floats_in_files(tmp_path, text, value):
    raw = read_yaml(write(tmp_path, f"x: {text}\n"))
    assert raw["x"] == value and isinstance(raw["x"], float)


def test_yaml12_float_in_an_override_and_ints_for_floats(example):
    cfg = load_config(example, ["optimizer.lr=1e-3", "regularization.l1=1"])
    assert cfg.optimizer["lr"] == 1e-3 and isinstance(cfg.optimizer["lr"], float)
    assert cfg.regularization.l1 == 1.0 and isinstance(cfg.regularization.l1, float)


@pytest.mark.parametrize("text,value", [("010", 10), ("08", 8), ("10_000", 10000), ("0x10", 16),
                                        ("0o10", 8), ("-5", -5), ("1:30", "1:30"),
                                        ("1:30.5", "1:30.5")])
def test_yaml12_integers_in_files(tmp_path, text, value):
    # YAML 1.1 reads 010 as eight, 08 not at all, 1:30 as ninety and 1:30.5 as 90.5 (base 60)
    assert read_yaml(write(tmp_path, f"x: {text}\n"))["x"] == value


def test_an_integer_in_base_60_is_refused_not_read_as_ninety(example):
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(example, ["train.epochs=1:30"])
    assert load_config(example, ["train.epochs=010"]).train.epochs == 10


def test_strings_that_look_like_yaml12_numbers_are_dumped_quoted(example, tmp_path):
    cfg = load_config(example, ["name='0o10'"])
    assert load_config(write(tmp_path, dump_config(cfg), "dumped.yaml")).name == "0o10"


def test_overriding_one_aliased_layer_changes_that_layer_alone(tmp_path):
    path = write(tmp_path, "model:\n  layers: [&fc {type: affine, units: 8}, relu, *fc, relu,\n"
                           "           {type: affine, units: 3}]\n")
    layers = load_config(path, ["model.layers.2.units=5"]).model.layers
    assert [layers[0]["units"], layers[2]["units"]] == [8, 5]


def test_aliases_that_expand_beyond_any_config_are_refused(tmp_path):
    lines = ["a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    with pytest.raises(ConfigError, match="aliases expand to more than 1,000,000 values"):
        read_yaml(write(tmp_path, "\n".join(lines) + "\n"))


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="an alias stands inside its own anchor"):
        read_yaml(write(tmp_path, "a: &x\n  b: *x\n"))


def test_quoted_numbers_stay_strings(tmp_path):
    assert read_yaml(write(tmp_path, "x: '1e-3'\ny: 7\n")) == {"x": "1e-3", "y": 7}


def test_duplicate_keys_name_the_path_and_both_lines(tmp_path):
    path = write(tmp_path, "seed: 0\ndata:\n  split:\n    val: 0.1\n    val: 0.3\nseed: 1\n")
    errors = errors_of(path)
    assert "lines 4 and 5" in error_at(errors, "data.split.val")
    assert "lines 1 and 6" in error_at(errors, "seed")


def test_python_tag_is_refused_with_its_line_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned"
    path = write(tmp_path, f"name: x\nseed: !!python/object/apply:os.system ['touch {target}']\n")
    message = error_at(errors_of(path), "seed")
    assert "python/object/apply:os.system" in message and "line 2" in message
    assert not target.exists()


def test_python_tag_in_an_override_is_refused(example, tmp_path):
    target = tmp_path / "pwned"
    errors = errors_of(example, [f"name=!!python/object/apply:os.system ['touch {target}']"])
    assert "tag !!python/object/apply:os.system" in error_at(errors, "name")
    assert not target.exists()


@pytest.mark.parametrize("text,expected", [
    ("- a\n- b\n", "expected a mapping"),
    ("just text\n", "expected a mapping"),
    ("", "expected a mapping"),
    ("a: [1, 2\nb: 3\n", "line 2"),
])
def test_files_that_are_not_a_mapping_or_not_yaml(tmp_path, text, expected):
    path = write(tmp_path, text)
    (message,) = errors_of(path)
    assert message.startswith(str(path)) and expected in message


def test_missing_file_and_directory(tmp_path):
    (missing,) = errors_of(tmp_path / "nope.yaml")
    assert "nope.yaml" in missing and "no such file" in missing
    (directory,) = errors_of(tmp_path)
    assert "directory" in directory


# -- overrides --------------------------------------------------------------------------
def test_overrides_on_list_indices_and_bare_layer_names(example):
    cfg = load_config(example, ["model.layers.0.units=256", "model.layers.2.type=tanh",
                                "data.preprocess=[]", "schedule=null"])
    assert cfg.model.layers[0] == {"type": "affine", "units": 256}
    assert cfg.model.layers[2] == {"type": "tanh"}
    assert cfg.data.preprocess == [] and cfg.schedule is None


def test_override_under_a_bare_name_turns_it_into_a_spec():
    raw = {"model": {"layers": ["relu", "leaky_relu"]}}
    out = apply_overrides(raw, ["model.layers.1.alpha=0.2"])
    assert out["model"]["layers"] == ["relu", {"type": "leaky_relu", "alpha": 0.2}]
    assert raw == {"model": {"layers": ["relu", "leaky_relu"]}}  # the input is not changed


def test_override_of_a_key_the_file_leaves_out_starts_from_its_default(tmp_path):
    path = write(tmp_path, "name: x\nmodel: {layers: [{type: affine, units: 4}]}\n")
    cfg = load_config(path, ["optimizer.lr=0.1", "data.dataset.classes=4"])
    assert cfg.optimizer == {"type": "sgd", "lr": 0.1}
    assert cfg.data.dataset == {"type": "spiral", "classes": 4}


def test_a_model_without_layers_is_refused_at_its_key_path(tmp_path):
    for text in ("name: x\n", "name: x\nmodel: {layers: []}\n"):
        with pytest.raises(ConfigError, match=r"model\.layers: must list at least one layer"):
            load_config(write(tmp_path, text), [])


def test_override_values_use_yaml_rules():
    out = apply_overrides({}, ["a.b=[64, 32]", "c=null", "d=true", "e=relu", "f={x: 1}"])
    assert out == {"a": {"b": [64, 32]}, "c": None, "d": True, "e": "relu", "f": {"x": 1}}


def test_override_creates_missing_and_null_sections(example):
    cfg = load_config(example, ["train.early_stopping=null", "train.early_stopping.patience=2"])
    assert cfg.train.early_stopping == EarlyStoppingConfig(patience=2)


@pytest.mark.parametrize("override,key_path,expected", [
    ("optimizer.lr", "optimizer.lr", "key=value"),
    ("a..b=1", "a..b", "malformed key"),
    ("model.layers.9.units=3", "model.layers.9", "out of range; the list has 5 items"),
    ("model.layers.x.units=3", "model.layers.x", "not a list index"),
    ("seed.value=3", "seed", "cannot set 'value'"),
    ("model.layers.2.type.x=3", "model.layers.2.type", "cannot set 'x'"),
    ("model.layers=[relu,", "model.layers", "override 'model.layers=[relu,', line 1"),
    ("optimizer={lr: 1, lr: 2}", "optimizer.lr", "duplicate key"),
])
def test_bad_overrides(example, override, key_path, expected):
    assert expected in error_at(errors_of(example, [override]), key_path)


def test_bad_overrides_and_bad_values_make_one_report(example):
    errors = errors_of(example, ["optimizer.lr", "model.layers.7.units=1", "train.epochs=0"])
    assert [e.split(":")[0] for e in errors] == ["optimizer.lr", "model.layers.7", "train.epochs"]


def test_apply_overrides_raises_for_bad_syntax():
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["seed"])


# -- validation: every mistake names its key path ---------------------------------------
@pytest.mark.parametrize("override,key_path,expected", [
    # unknown keys: did-you-mean and the allowed keys
    ("trian.epochs=3", "trian", "unknown key (did you mean 'train'?); allowed: name, seed"),
    ("train.epoch=3", "train.epoch", "(did you mean 'epochs'?)"),
    ("data.split.vall=0.1", "data.split.vall", "allowed: val, test, stratify"),
    # wrong types: bool is never an int, strings are not numbers
    ("train.epochs=ten", "train.epochs", "expected an integer, got 'ten'"),
    ("train.epochs=3.5", "train.epochs", "expected an integer"),
    ("train.epochs=true", "train.epochs", "expected an integer, got True"),
    ("seed=null", "seed", "expected an integer, got null"),
    ("regularization.l2=true", "regularization.l2", "expected a number"),
    ("data.split.stratify=1", "data.split.stratify", "expected true or false"),
    ("train.batch_size=64.0", "train.batch_size", "expected an integer or a string"),
    ("train.early_stopping=5", "train.early_stopping", "expected a mapping"),
    ("model=[1]", "model", "expected a mapping"),
    ("name=[a]", "name", "expected a string"),
    # out of range
    ("train.batch_size=0", "train.batch_size", 'integer >= 1 or "full"'),
    ("train.batch_size=fulll", "train.batch_size", "(did you mean 'full'?)"),
    ("train.epochs=0", "train.epochs", "must be >= 1"),
    ("data.split.val=1.0", "data.split.val", "[0, 1)"),
    ("data.split.test=-0.1", "data.split.test", "[0, 1)"),
    ("regularization.l1=-1e-3", "regularization.l1", "must be >= 0"),
    ("regularization.l2=.nan", "regularization.l2", "expected a finite number, got nan"),
    ("regularization.l2=.inf", "regularization.l2", "expected a finite number, got inf"),
    ("train.clip_grad_norm=.inf", "train.clip_grad_norm", "expected a finite number, got inf"),
    ("model.init={type: normal, std: .nan}", "model.init.std", "finite number >= 0.0, got nan"),
    ("model.init={type: constant, value: -.inf}", "model.init.value", "finite number, got -inf"),
    ("train.early_stopping.patience=-1", "train.early_stopping.patience", "must be >= 1"),
    # patience 0 would stop after the first epoch, improving or not
    ("train.early_stopping.patience=0", "train.early_stopping.patience", "must be >= 1, got 0"),
    ("train.clip_grad_norm=0", "train.clip_grad_norm", "must be > 0"),
    ("train.clip_grad_value=-1", "train.clip_grad_value", "must be > 0"),
    ("train.dtype=float16", "train.dtype", "allowed: float32, float64"),
    ("checkpoint.mode=maximum", "checkpoint.mode",
     "(did you mean 'max'?); allowed: max, min, auto"),
    ("checkpoint.monitor=val/accuracy", "checkpoint.monitor", "(did you mean 'val/acc'?)"),
    ("train.early_stopping.monitor=val/f1", "train.early_stopping.monitor",
     "allowed: auto, val/acc, val/loss, val/mse, val/r2, val/miou, train/loss, train/acc, "
     "train/miou"),
    ("name=a/b", "name", "without '/'"),
    # registry specs: names, options, constructor checks
    ("model.layers.2=rellu", "model.layers.2",
     "unknown layer 'rellu' (did you mean 'relu'?); known:"),
    ("model.layers.0.type=afine", "model.layers.0.type", "(did you mean 'affine'?)"),
    ("model.layers.0.unitz=3", "model.layers.0.unitz",
     "layer 'affine' has no option 'unitz' (did you mean 'units'?); options: units, init"),
    ("model.layers.0={type: affine}", "model.layers.0", "needs option(s): units"),
    ("model.layers.0.units=0", "model.layers.0.units", "units must be a positive integer"),
    ("model.layers.3.drop_rate=1.5", "model.layers.3.drop_rate", "drop_rate"),
    ("model.layers.1=5", "model.layers.1", "expected a layer name or a mapping with a 'type' key"),
    ("model.layers.1={units: 3}", "model.layers.1", "mapping with a 'type' key"),
    ("model.layers=relu", "model.layers", "expected a list of layer specs"),
    ("model.init=glorot", "model.init", "unknown initializer 'glorot'; known:"),
    ("model.layers.0.init=glorot", "model.layers.0.init", "unknown initializer 'glorot'"),
    ("model.layers.0.init={type: normal, std: -1}", "model.layers.0.init.std", "std must be"),
    ("model.init.std=-1", "model.init.std", "initializer 'he_normal' has no option 'std'"),
    ("model.loss=cross_entropy", "model.loss", "unknown loss 'cross_entropy'"),
    ("optimizer.type=adamm", "optimizer.type", "unknown optimizer 'adamm' (did you mean 'adam'?)"),
    ("optimizer.lr=-1", "optimizer.lr", "lr must be"),
    ("optimizer.betas=[0.9, 0.99]", "optimizer.betas", "has no option 'betas'"),
    ("schedule.type=stepp", "schedule.type", "(did you mean 'step'?)"),
    ("schedule.every=0", "schedule.every", "every"),
    ("data.dataset=digit", "data.dataset", "unknown dataset 'digit' (did you mean 'digits'?)"),
    ("data.dataset=null", "data.dataset", "expected a dataset name"),
    ("data.preprocess.0=standardise", "data.preprocess.0", "(did you mean 'standardize'?)"),
    ("data.augment=[flipp]", "data.augment.0", "unknown augmentation 'flipp'"),
    # an import path or _target_ is just an unknown name or key
    ("model.layers.2=torch.nn.ReLU", "model.layers.2", "unknown layer 'torch.nn.ReLU'; known: "),
    ("optimizer={_target_: torch.optim.SGD, lr: 0.1}", "optimizer", "known optimizers: adagrad"),
    ("model.layers.0._target_=torch.nn.Linear", "model.layers.0._target_",
     "has no option '_target_'"),
    ("model.layers.1.eps=.inf", "model.layers.1.eps", "eps must be a number in (0, 1], got inf"),
    ("model.layers.1.eps=0", "model.layers.1.eps", "eps must be a number in (0, 1], got 0"),
    ("model.layers.2={type: leaky_relu, alpha: .nan}", "model.layers.2.alpha",
     "alpha must be a finite number >= 0.0, got nan"),
    ("schedule={type: cosine, min_lr: 1.0e-2}", "schedule.min_lr",
     "0.01 is above optimizer.lr 0.001, so the schedule would raise the rate"),
    ("schedule={type: warmup, epochs: 2, after: {type: plateau, min_lr: 1.0e-2}}",
     "schedule.after.min_lr", "0.01 is above optimizer.lr 0.001"),
])
def test_each_mistake_is_reported_at_its_key_path(example, override, key_path, expected):
    errors = errors_of(example, [override])
    assert len(errors) == 1, "\n".join(errors)
    assert expected in error_at(errors, key_path)


def test_an_integer_beyond_the_largest_float_is_a_mistake_not_a_crash(example):
    huge = "1" + "0" * 400  # YAML reads it as an int; float() of it overflows
    errors = errors_of(example, [f"regularization.l2={huge}", "model.layers.1={type: leaky_relu, "
                                                               f"alpha: {huge}}}"])
    assert error_at(errors, "regularization.l2").startswith(
        "regularization.l2: expected a finite number, got 1000")
    assert error_at(errors, "model.layers.1.alpha").startswith(
        "model.layers.1.alpha: alpha must be a finite number >= 0.0, got 1000")


def test_val_plus_test_must_leave_training_data(example):
    errors = errors_of(example, ["data.split.val=0.5", "data.split.test=0.5"])
    assert "val + test must be < 1" in error_at(errors, "data.split")


def test_unknown_names_list_the_known_ones(example):
    message = error_at(errors_of(example, ["model.layers.2=swish"]), "model.layers.2")
    for name in LAYERS.names():
        assert name in message


def test_nested_layers_inside_blocks_are_checked(example):
    good = load_config(example, ["model.layers.2={type: residual, layers: [relu, "
                                 "{type: affine, units: 128}]}"])
    assert good.model.layers[2]["type"] == "residual"
    errors = errors_of(example, ["model.layers.2={type: residual, layers: [rellu]}"])
    assert "unknown layer 'rellu'" in error_at(errors, "model.layers.2.layers.0")
    errors = errors_of(example, ["model.layers.2={type: concat, branches: [[{type: affine, "
                                 "units: -1}]]}"])
    assert len(errors) == 1
    assert "units must be a positive integer" in error_at(errors, "model.layers.2.branches.0.0.units")


@pytest.mark.parametrize("block,key_path", [
    ("{type: residual, layers: [relu, {type: affine, units: 128, init: he_nromal}]}",
     "model.layers.2.layers.1.init"),
    ("{type: concat, branches: [[], [tanh, {type: affine, units: 8, init: he_nromal}]]}",
     "model.layers.2.branches.1.1.init"),
    ("{type: residual, layers: [{type: concat, branches: [[{type: affine, units: 4, "
     "init: he_nromal}]]}]}", "model.layers.2.layers.0.branches.0.0.init"),
])
def test_a_misspelled_init_inside_a_block_is_reported_at_its_nested_path(example, block, key_path):
    errors = errors_of(example, [f"model.layers.2={block}"])
    assert len(errors) == 1, "\n".join(errors)
    assert "unknown initializer 'he_nromal' (did you mean 'he_normal'?); known: " in \
        error_at(errors, key_path)


def holds_layer_specs(value) -> bool:
    """Whether ``value`` is a list holding (at any depth of lists) a layer spec mapping."""
    return isinstance(value, list) and any(
        isinstance(item, dict) and item.get("type") in LAYERS or holds_layer_specs(item)
        for item in value)


def test_every_block_option_holding_layers_is_checked_nested():
    """A new block whose examples nest layer specs needs its entry in NESTED_LAYERS."""
    found = {(name, option)
             for name in LAYERS.names() for example in LAYERS.get(name).examples
             if isinstance(example.spec, dict)
             for option, value in example.spec.items() if holds_layer_specs(value)}
    assert found == set(NESTED_LAYERS)


# -- monitors: each names a metric the run reports ---------------------------------------
def test_an_accuracy_monitor_on_a_regression_model_is_refused(example):
    errors = errors_of(example, ["model.loss=mse"])  # both monitors of EXAMPLE are val/acc
    assert len(errors) == 2, "\n".join(errors)
    for key_path in ("checkpoint.monitor", "train.early_stopping.monitor"):
        assert error_at(errors, key_path) == (
            f"{key_path}: a regression model does not report val/acc; "
            f"allowed: val/loss, val/mse, val/r2, train/loss")
    errors = errors_of(example, ["model.loss=mse", "checkpoint.monitor=train/acc",
                                 "train.early_stopping=null"])
    assert "does not report train/acc" in error_at(errors, "checkpoint.monitor")


@pytest.mark.parametrize("monitor", ["auto", "val/loss", "val/mse", "val/r2", "train/loss"])
def test_a_regression_model_may_monitor_what_it_reports(example, monitor):
    cfg = load_config(example, ["model.loss=mse", f"checkpoint.monitor={monitor}",
                                "checkpoint.mode=auto", f"train.early_stopping.monitor={monitor}"])
    assert cfg.checkpoint.monitor == monitor


@pytest.mark.parametrize("section", ["checkpoint", "train.early_stopping"])
def test_a_mode_against_the_monitors_direction_is_refused(example, section):
    # the example's checkpoint.mode is max: monitoring a loss with it keeps the worst epoch
    errors = errors_of(example, [f"{section}.monitor=val/loss", f"{section}.mode=max"])
    assert error_at(errors, f"{section}.mode") == (
        f"{section}.mode: val/loss is minimized, so the mode is min (or auto), got max")


def test_a_validation_monitor_needs_a_validation_split(example):
    errors = errors_of(example, ["data.split.val=0"])
    assert len(errors) == 2, "\n".join(errors)
    assert error_at(errors, "checkpoint.monitor") == (
        "checkpoint.monitor: val/acc needs a validation split, but data.split.val is 0; "
        "set it (e.g. 0.2) or validation.kfold; allowed: train/loss, train/acc")
    # auto, the default of both monitors, is val/acc for a classifier, val/loss for regression
    errors = errors_of(example, ["data.split.val=0", "checkpoint.monitor=auto",
                                 "train.early_stopping={}"])
    for key_path in ("checkpoint.monitor", "train.early_stopping.monitor"):
        assert "auto (val/acc for this model) needs a validation split" in error_at(errors, key_path)
    errors = errors_of(example, ["data.split.val=0", "checkpoint.monitor=auto",
                                 "train.early_stopping=null", "model.loss=mse"])
    assert error_at(errors, "checkpoint.monitor") == (
        "checkpoint.monitor: auto (val/loss for this model) needs a validation split, but "
        "data.split.val is 0; set it (e.g. 0.2) or validation.kfold; allowed: train/loss")


def test_without_a_validation_split_train_monitors_and_kfold_are_allowed(example):
    cfg = load_config(example, ["data.split.val=0", "checkpoint.monitor=train/loss",
                                "checkpoint.mode=min", "train.early_stopping.monitor=train/acc"])
    assert cfg.data.split.val == 0
    cfg = load_config(example, ["data.split.val=0", "validation.kfold=3"])  # folds validate
    assert cfg.checkpoint.monitor == "val/acc"


def test_a_training_monitor_needs_scored_training_samples(example):
    errors = errors_of(example, ["train.eval_train_samples=0", "checkpoint.monitor=train/loss"])
    assert error_at(errors, "checkpoint.monitor") == (
        "checkpoint.monitor: train/loss needs scored training samples, but "
        "train.eval_train_samples is 0; set it >= 1; allowed: val/acc, val/loss")
    errors = errors_of(example, ["train.eval_train_samples=0", "data.split.val=0",
                                 "train.early_stopping=null"])
    assert error_at(errors, "checkpoint.monitor").endswith(
        "no metric is reported with data.split.val 0 and train.eval_train_samples 0")


@pytest.mark.parametrize("loss,y", [
    ("softmax_cross_entropy", np.array([0, 1, 2, 1])),
    ("svm", np.array([0, 1, 2, 1])),
    ("binary_cross_entropy", np.array([0, 1, 1, 0])),
    ("mse", np.array([[0.5], [-1.0], [2.0], [0.0]])),
])
def test_the_monitor_rule_lists_what_evaluate_reports(loss, y):
    units = 1 if loss in ("binary_cross_entropy", "mse") else 3
    model = Model([{"type": "affine", "units": units}], (2,), loss=loss)
    scores = evaluate(model, np.random.default_rng(0).normal(size=(4, 2)), y, "val")
    assert sorted(scores) == sorted(f"val/{m}" for m in reported_metrics(model.loss_fn.task))


def test_optional_sections_may_be_null(example):
    cfg = load_config(example, ["schedule=null", "train.early_stopping=null",
                                "train.clip_grad_value=0.5", "train.batch_size=full"])
    assert cfg.schedule is None and cfg.train.early_stopping is None
    assert cfg.train.clip_grad_value == 0.5 and cfg.train.batch_size == "full"


def test_many_mistakes_in_one_file_are_all_reported(tmp_path):
    path = write(tmp_path, EXAMPLE.replace("seed: 0", "seed: 0\nseeed: 1")
                 .replace("units: 128", "units: 0")
                 .replace("- relu", "- rellu")
                 .replace("lr: 1.0e-3", "lr: -1.0e-3")
                 .replace("epochs: 30", "epochs: 0")
                 .replace("mode: max", "mode: maxx")
                 .replace("dataset: digits", "dataset: digitz"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    paths = sorted(e.split(":")[0] for e in error.errors)
    assert paths == sorted(["seeed", "model.layers.0.units", "model.layers.2", "optimizer.lr",
                            "train.epochs", "checkpoint.mode", "data.dataset"])
    assert str(error) == "\n".join(error.errors)


def test_validate_takes_a_raw_dict_and_fills_defaults():
    cfg = validate({"name": "tiny", "data": {"dataset": "digits"}, "model": {"layers": ["relu"]}})
    assert cfg.train == TrainConfig() and cfg.model == ModelConfig(layers=["relu"])
    with pytest.raises(ConfigError, match="config: expected a mapping"):
        validate([1, 2])


def test_validation_loads_no_data(example, tmp_path):
    missing = tmp_path / "absent.npz"
    cfg = load_config(example, [f"data.dataset={{type: npz, path: '{missing}'}}"])
    assert cfg.data.dataset["type"] == "npz" and not missing.exists()


def test_each_component_is_built_once_to_check_it_and_then_trained(tmp_path, monkeypatch):
    from dl_cli import training
    from dl_cli.data.datasets import Blobs
    from dl_cli.data.preprocess import Standardize
    from dl_cli.nn.affine import Affine

    built, data_built = [], []

    def counting(cls, into):
        init = cls.__init__

        @functools.wraps(init)
        def counted(self, *args, **kwargs):
            into.append(self)
            init(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counted)

    counting(Affine, built)
    counting(Blobs, data_built)
    counting(Standardize, data_built)
    path = write(tmp_path, """\
data: {dataset: {type: blobs, samples: 60}, preprocess: [standardize]}
model:
  layers:
    - {type: residual, layers: [{type: affine, units: 2}, relu]}
    - {type: affine, units: 3}
optimizer: {type: adam, lr: 1.0e-3}
schedule: {type: step, every: 2}
""")
    cfg = load_config(path)
    assert len(built) == 2  # the outer affine, and the one in the block, once each
    kept = {key: cfg.components.get(key) for key in ("model.layers.0", "model.layers.1",
                                                     "model.loss", "optimizer", "schedule")}
    assert len(data_built) == 2  # the data set and its preprocessing step, once each
    parts = training.assemble(cfg)
    assert len(built) == 2 and len(data_built) == 2
    assert parts.model.layers[0] is kept["model.layers.0"]
    assert parts.model.layers[1] is kept["model.layers.1"]
    assert parts.model.loss_fn is kept["model.loss"]
    assert (parts.optimizer, parts.schedule) == (kept["optimizer"], kept["schedule"])
    again = training.assemble(cfg)  # a second assembly (the next fold) builds its own
    assert len(built) == 4 and again.model.layers[1] is not parts.model.layers[1]
    assert again.optimizer is not parts.optimizer


def test_config_error_pickles_with_its_errors():
    error = pickle.loads(pickle.dumps(ConfigError(["a: one", "b: two"])))
    assert error.errors == ["a: one", "b: two"] and str(error) == "a: one\nb: two"
