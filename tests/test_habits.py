"""What people bring from Hydra and Lightning CLI: ~key, hints for +key, --key value and
-m, a quick grid on the command line, --print-config as training uses it, and shell
completion of KEY=VALUE."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dl_cli.checks import ConfigError
from dl_cli.cli.app import app
from dl_cli.cli.completion import complete_override
from dl_cli.config import load_config
from dl_cli.sweep.quick import top_level_parts

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "configs" / "digits_mlp.yaml"
runner = CliRunner()



def dl(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=300)


def said(result) -> str:
    return " ".join(result.output.split())


def test_a_tilde_deletes_a_key_back_to_its_default():
    cfg = load_config(DIGITS, ["~schedule", "~regularization.l2", "~model.layers.3",
                               "~train.early_stopping.patience", "~validation.kfold"])
    assert cfg.schedule is None and cfg.regularization.l2 == 0.0
    assert [layer if isinstance(layer, str) else layer["type"] for layer in cfg.model.layers] == [
        "affine", "batchnorm", "relu", "affine"]  # the dropout is gone
    assert cfg.train.early_stopping.patience == 10  # the schema's default
    with pytest.raises(ConfigError, match="trian.epochs: cannot delete it: the config has no trian"):
        load_config(DIGITS, ["~trian.epochs"])
    with pytest.raises(ConfigError, match="deleting a key is ~dotted.key, with no value"):
        load_config(DIGITS, ["~train.epochs=3"])


@pytest.mark.parametrize("args, hint", [
    (["+optimizer.momentum=0.9"], "optimizer.momentum: write 'optimizer.momentum=0.9', without +: "
                                  "key=value already adds a key or overrides it"),
    (["++optimizer.lr=0.1"], "write 'optimizer.lr=0.1', without ++"),
    (["--optimizer.lr", "0.1"], "--optimizer.lr: a config key is set as optimizer.lr=0.1, not as an option"),
    (["--train.epochs=3"], "a config key is set as train.epochs=3"),
    (["-m", "optimizer.lr=0.1,0.01"], "-m: dl has no multirun flag; a grid over values is a "
                                      "sweep: dl sweep CONFIG optimizer.lr=1e-3,1e-2"),
])
def test_other_tools_habits_get_a_hint(args, hint):
    result = dl("train", DIGITS, *args)
    assert result.exit_code == 2 and hint in said(result), result.output


def test_a_train_config_and_comma_values_make_a_grid_sweep(tmp_path, tiny_config, write_config):
    one_epoch = tiny_config(name="tiny", seed=0, train={"epochs": 1, "batch_size": 16})
    base = write_config(tmp_path, one_epoch, "tiny.yaml")
    result = dl("sweep", base, "optimizer.lr=0.01,0.1", "model.layers.0.units=4,8",
                "regularization.l2=1e-4")
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs" / "tiny-grid").iterdir()
    with open(folder / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((float(r["optimizer.lr"]), int(r["model.layers.0.units"])) for r in rows) == [
        (0.01, 4), (0.01, 8), (0.1, 4), (0.1, 8)]
    spec = yaml.safe_load((folder / "spec.yaml").read_text())
    assert spec["method"] == "grid" and spec["overrides"] == ["regularization.l2=1e-4"]
    assert load_config(folder / "trial-0003" / "config.yaml").regularization.l2 == 1e-4
    resumed = dl("sweep", "--resume", folder)
    assert resumed.exit_code == 0 and "already complete" in resumed.output
    refused = dl("sweep", base, "optimizer.lr=0.1")
    assert refused.exit_code == 2 and "give the values to try as key=v1,v2" in said(refused)


def test_only_top_level_commas_separate_grid_values():
    assert top_level_parts("1e-3,1e-2") == ["1e-3", "1e-2"]
    assert top_level_parts("[64, 32],[8]") == ["[64, 32]", "[8]"]
    assert top_level_parts("{type: step, every: 2},'a,b'") == ["{type: step, every: 2}", "'a,b'"]


def test_print_config_resolves_auto_by_the_task():
    result = dl("train", ROOT / "configs" / "quickstart.yaml", "model.loss=mse", "~checkpoint",
                "train.early_stopping={patience: 3}", "--print-config")
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert (printed["checkpoint"]["monitor"], printed["checkpoint"]["mode"]) == ("val/loss", "min")
    assert printed["train"]["early_stopping"] == {"monitor": "val/loss", "mode": "min",
                                                  "patience": 3, "min_delta": 0.0}
    assert load_config(ROOT / "configs" / "quickstart.yaml", ["schedule=cosine"]).schedule == "cosine"
    cosine = yaml.safe_load(dl("train", DIGITS, "schedule=cosine", "--print-config").output)
    assert cosine["schedule"] == {"type": "cosine", "epochs": None, "min_lr": 0.0}


def test_overrides_complete_from_the_schema_and_the_registries():
    assert complete_override("optim") == ["optimizer=", "optimizer.type="]
    assert "train.early_stopping.patience=" in complete_override("train.early")
    assert complete_override("optimizer.type=ada") == ["optimizer.type=adagrad",
                                                       "optimizer.type=adam", "optimizer.type=adamw"]
    assert complete_override("model.layers.2=lst") == ["model.layers.2=lstm"]
    assert complete_override("data.preprocess.0.type=pca") == ["data.preprocess.0.type=pca",
                                                               "data.preprocess.0.type=pca_whiten"]
    assert complete_override("train.epochs=") == []  # a number: nothing to offer


def test_the_shell_asks_dl_for_completions():
    env = {**os.environ, "_DL_COMPLETE": "complete_bash", "COMP_CWORD": "3",
           "COMP_WORDS": "dl train c.yaml schedule.type=co"}
    done = subprocess.run([sys.executable, "-m", "dl_cli"], env=env, capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["schedule.type=constant", "schedule.type=cosine"]
    assert "--install-completion" in dl("--help").output
