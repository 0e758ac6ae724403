"""load: typed splits and their info, values the dtype cannot hold, classes training
never sees (a warning), and data settings that end `dl train` with exit 2."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dl_cli.cli.app import app
from dl_cli.data import DataError, load
from dl_cli.registry import RegistryError
from dl_cli.schema import DataConfig, SplitConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
QUICKSTART = str(CONFIGS / "quickstart.yaml")
DIGITS_CNN = str(CONFIGS / "digits_cnn.yaml")


def test_load_returns_typed_splits_and_info():
    splits = load(DataConfig(dataset="iris"), seed=0)
    assert splits.train.X.dtype == np.float32 and splits.train.y.dtype == np.int64
    assert splits.in_shape == (4,) and splits.num_classes == 3 and splits.task == "classification"
    assert splits.info["sizes"] == {"train": 90, "val": 30, "test": 30}
    assert splits.info["class_names"] == ["setosa", "versicolor", "virginica"]
    assert json.loads(json.dumps(splits.info))["dataset"] == "iris"
    regression = load(DataConfig(dataset="polynomial"), seed=0, dtype="float64")
    assert regression.train.y.dtype == np.float64 and regression.num_classes is None
    again = load(DataConfig(dataset="iris"), seed=0)
    np.testing.assert_array_equal(again.val.X, splits.val.X)
    assert not np.array_equal(load(DataConfig(dataset="iris"), seed=1).val.X, splits.val.X)
    with pytest.raises(ValueError, match="dtype"):
        load(DataConfig(dataset="iris"), dtype="int32")


def test_load_refuses_unknown_names():
    with pytest.raises(RegistryError, match="spiral"):
        load(DataConfig(dataset="spirals"))
    with pytest.raises(RegistryError, match="standardize"):
        load(DataConfig(dataset="iris", preprocess=["standardise"]))


def test_values_beyond_float32_are_refused_before_they_become_infinity(tmp_path):
    X = np.random.rand(30, 2)
    X[3, 1] = 1e39
    path = tmp_path / "large.npz"
    np.savez(path, X=X, y=np.arange(30) % 3)
    data = DataConfig(dataset={"type": "npz", "path": str(path)})
    with pytest.raises(DataError, match=r"X holds values beyond float32's largest"):
        load(data)
    assert np.isfinite(load(data, dtype="float64").train.X).all()


def test_a_training_split_of_one_class_is_refused(tmp_path):
    path = tmp_path / "one.npz"
    np.savez(path, X=np.random.rand(30, 2), y=np.zeros(30, dtype=int))
    with pytest.raises(DataError, match=r"the training split holds one class only \(0\)"):
        load(DataConfig(dataset={"type": "npz", "path": str(path)}))


def rare_classes(tmp_path, names=None):
    """Two classes of 100 samples and 60 of one sample each: an npz and its data config."""
    y = np.concatenate([np.repeat([0, 1], 100), np.arange(2, 62)])
    path = tmp_path / "rare.npz"
    extra = {} if names is None else {"names": np.array(names)}
    np.savez(path, X=np.random.default_rng(0).normal(size=(len(y), 2)), y=y, **extra)
    return {"type": "npz", "path": str(path)}


def left_out(splits):
    """The classes of val and test samples that no training sample has."""
    return np.setdiff1d(np.concatenate([splits.val.y, splits.test.y]), splits.train.y)


def test_classes_the_stratified_split_leaves_out_of_training_are_a_warning(tmp_path):
    names = ["cat", "dog"] + [str(c) for c in range(2, 62)]
    splits = load(DataConfig(dataset=rare_classes(tmp_path, names)), seed=0)
    missing = left_out(splits)  # val and test take 52 each: 2 × 20 large, 12 singletons
    assert missing.size == 24
    [message] = splits.warnings
    shown = ", ".join(map(str, missing[:10]))
    assert message.startswith(f"data: 24 of the 62 classes have no sample in the training "
                              f"split: {shown} and 14 more; validation and test hold 24 "
                              f"samples of them, which the model always misclassifies")
    assert message.endswith("The stratified split (data.split: val 0.2, test 0.2) left these "
                            "classes, too small to be in every split, out of training; to train "
                            "on every class, lower data.split.val or data.split.test, or add "
                            "samples of them")
    two = tmp_path / "two"
    two.mkdir()
    y = np.array([0] * 10 + [1] * 10 + [2, 3])  # 30% of each split takes both singletons
    np.savez(two / "named.npz", X=np.ones((len(y), 2)), y=y, names=np.array(["cat", "dog", "eel", "fox"]))
    named = load(DataConfig(dataset={"type": "npz", "path": str(two / "named.npz")},
                            split=SplitConfig(val=0.3, test=0.3)))
    assert named.warnings[0].startswith("data: 2 of the 4 classes have no sample in the training "
                                        "split: 2 (eel), 3 (fox); validation and test hold 2 ")


def test_classes_an_unstratified_split_leaves_out_say_to_stratify(tmp_path):
    data = DataConfig(dataset=rare_classes(tmp_path), split=SplitConfig(val=0.1, test=0.3, stratify=False))
    splits = load(data, seed=0)
    missing = left_out(splits)
    assert missing.size > 10
    [message] = splits.warnings
    assert f"{missing.size} of the 62 classes" in message and f"and {missing.size - 10} more" in message
    assert message.endswith("The split (data.split: val 0.1, test 0.3, stratify: false) left these "
                            "classes out of training; to train on every class, set "
                            "data.split.stratify: true, or lower data.split.val or data.split.test")


def test_no_warning_when_training_has_every_class_or_labels_are_per_step():
    assert load(DataConfig(dataset="iris"), seed=0).warnings == []
    assert load(DataConfig(dataset="polynomial"), seed=0).warnings == []
    text = load(DataConfig(dataset={"type": "text", "steps": 32}, split=SplitConfig(val=0.1, test=0.1)))
    assert left_out(text).size  # a rare character only in val or test: ordinary for text
    assert text.warnings == []


@pytest.mark.parametrize("config,override,message", [
    (QUICKSTART, "data.augment=[flip]", r"data\.augment\.0 \(flip\): needs image samples"),
    (DIGITS_CNN, "data.augment=[{type: translate, max_shift: 8}]",
     r"data\.augment\.0 \(translate\): max_shift must be smaller than the image \(8×8\), got 8"),
    (DIGITS_CNN, "data.augment=[{type: crop, pad: 8}]",
     r"data\.augment\.0 \(crop\): pad must be smaller than the image \(8×8\), got 8"),
    (QUICKSTART, "data.preprocess=[{type: pca, components: 5}]",
     r"data\.preprocess\.0: 'pca': components must be at most the 2 input features, got 5"),
])
def test_train_refuses_data_steps_that_do_not_fit_with_exit_2(tmp_path, config, override, message):
    result = CliRunner().invoke(app, ["train", config, override, "train.epochs=1", "-q",
                                      "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert re.search(message, " ".join(result.output.split())), result.output


def test_train_on_plus_minus_one_labels_says_how_to_map_them(tmp_path):
    path = tmp_path / "pm1.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{1 - 2 * (i % 2)}\n" for i in range(20)))
    result = CliRunner().invoke(app, ["train", QUICKSTART, f"data.dataset={{type: csv, path: {path}}}",
                                      "train.epochs=1", "-q", "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "whole numbers -1, 1, read as regression" in " ".join(result.output.split())
    assert "-1 → 0" in result.output


def test_train_on_a_label_beyond_int64_exits_2_naming_it(tmp_path):
    path = tmp_path / "floats.npz"
    np.savez(path, X=np.ones((20, 2)), y=np.r_[np.arange(19) % 2, 1e19])
    result = CliRunner().invoke(app, ["train", QUICKSTART, f"data.dataset={{type: npz, path: {path}, "
                                      f"task: classification}}", "train.epochs=1", "-q",
                                      "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "floats.npz: y[19]: label 1e+19 is too large to be a class index" in " ".join(result.output.split())
