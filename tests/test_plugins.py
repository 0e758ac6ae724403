"""Layers of one's own: a config's ``plugins`` are imported before its model is built,
the resolved config keeps them, and a run folder's plugins run only when allowed.

Commands run in fresh processes (``python -m dl_cli``), where no plugin is imported yet:
what reading a run folder would import shows only there.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dl_cli import plugins
from dl_cli.registry import LAYERS


ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "configs" / "plugins" / "my_layers.py"


def dl(*args, cwd=None, env=None):
    """``dl ARGS`` in a new process; the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "dl_cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


# A plugin whose import leaves a mark in a file: whether its code ran.
MARKED = '''
import os
from pathlib import Path

from dl_cli.nn import Layer
from dl_cli.nn.layer import Example
from dl_cli.registry import LAYERS

with open(Path(__file__).with_name("imported.txt"), "a") as mark:
    mark.write(f"{os.getpid()}\\n")


@LAYERS.register("plugin_test_double")
class Double(Layer):
    """``2x``."""

    examples = (Example("plugin_test_double", (3,)),)

    def forward(self, x, train=True):
        return 2 * x

    def backward(self, dout):
        return 2 * dout
'''


def marked_config(tmp_path: Path, **changes) -> Path:
    """A config (in tmp_path/configs) naming the marking plugin by a relative path."""
    folder = tmp_path / "configs"
    (folder / "plugins").mkdir(parents=True, exist_ok=True)
    (folder / "plugins" / "marked.py").write_text(MARKED)
    cfg = {"name": "marked", "runs_dir": str(tmp_path / "runs"), "plugins": ["plugins/marked.py"],
           "data": {"dataset": {"type": "spiral", "classes": 3, "samples": 40},
                    "preprocess": ["standardize"]},
           "model": {"layers": [{"type": "affine", "units": 8}, "plugin_test_double", "relu",
                                {"type": "affine", "units": 3}]},
           "optimizer": {"type": "adam", "lr": 1.0e-2}, "train": {"epochs": 2, "batch_size": 16},
           **changes}
    path = folder / "marked.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_the_example_plugin_layer_keeps_the_layer_contract(assert_gradients_match,
                                                           assert_eval_gradients_match):
    """configs/plugins/my_layers.py: its examples pass the checks every built-in layer
    passes (tests/nn/test_layer.py): shapes, config round trip, gradients in both modes."""
    plugins.import_plugin(str(EXAMPLE))
    cls = LAYERS.get("learned_swish")
    assert cls.examples
    for example in cls.examples:
        layer = LAYERS.create(example.spec)
        layer.configure(np.float64, "xavier_normal")
        assert layer.build(example.in_shape, np.random.default_rng(0)) == example.in_shape
        assert LAYERS.create(layer.config()).config() == layer.config()
        x = example.input(4, np.random.default_rng(1))
        assert_gradients_match(layer, x)
        assert_eval_gradients_match(layer, x, np.random.default_rng(3))
    checked = dl("gradcheck", "--layer", "learned_swish", "--plugin", EXAMPLE)
    assert checked.returncode == 0 and "all 4 tensors pass" in checked.stdout


@pytest.mark.slow
def test_the_example_config_trains_evaluates_predicts_and_exports(tmp_path):
    """configs/digits_swish.yaml, trained from another folder than the config's."""
    trained = dl("train", ROOT / "configs" / "digits_swish.yaml", "train.epochs=2",
                 f"runs_dir={tmp_path / 'runs'}", "-q", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    run = tmp_path / "runs" / "digits-swish"
    saved = yaml.safe_load((run / "latest" / "config.yaml").read_text())
    assert saved["plugins"] == [str(EXAMPLE)]  # absolute: found from any folder
    scored = dl("eval", run, "--allow-plugins")
    assert scored.returncode == 0, scored.stderr
    summary = json.loads((run / "latest" / "summary.json").read_text())
    assert f"{summary['test']['test/acc']:.4g}" in scored.stdout
    X = np.random.default_rng(0).integers(0, 17, (20, 64))
    data = tmp_path / "x.csv"
    np.savetxt(data, X, fmt="%d", delimiter=",")
    predicted = dl("predict", run, "--data", data, "--proba", "--allow-plugins")
    assert predicted.returncode == 0, predicted.stderr
    rows = [line.split(",") for line in predicted.stdout.splitlines()[1:]]
    assert len(rows) == 20
    ort = pytest.importorskip("onnxruntime")
    exported = dl("export", run, "--out", tmp_path / "swish.onnx", "--allow-plugins")
    assert exported.returncode == 0, exported.stderr
    session = ort.InferenceSession(str(tmp_path / "swish.onnx"), providers=["CPUExecutionProvider"])
    probabilities = session.run(["probabilities"], {"X": X.astype(np.float32)})[0]
    np.testing.assert_allclose(probabilities, [[float(v) for v in row[1:]] for row in rows],
                               rtol=0, atol=1e-5)


def test_a_run_folder_imports_no_plugin_until_allowed(tmp_path):
    """The promise of docs/reliability.md: reading a run folder whose config names
    plugins runs none of their code, for every command that reads one, until
    --allow-plugins is given; the refusal lists the files."""
    config = marked_config(tmp_path)
    mark = config.parent / "plugins" / "imported.txt"
    plugin = config.parent / "plugins" / "marked.py"
    trained = dl("train", config, "-q")
    assert trained.returncode == 0, trained.stderr
    assert mark.exists()  # the user's own config imports its plugins
    mark.unlink()
    run = tmp_path / "runs" / "marked" / "latest"
    data = tmp_path / "x.csv"
    data.write_text("0.5,0.5\n1,-1\n")
    commands = {"eval": ["eval", run], "predict": ["predict", run, "--data", data],
                "export": ["export", run, "--out", tmp_path / "m.onnx"],
                "sample": ["sample", run], "resume": ["train", "--resume", run, "-q"],
                "print the resumed config": ["train", "--resume", run, "--print-config"]}
    before = {p: p.read_bytes() for p in run.resolve().rglob("*") if p.is_file()}
    for name, command in commands.items():
        refused = dl(*command)
        assert refused.returncode == 2, (name, refused.stderr)
        assert "names plugins, code that reading this run would import: " in refused.stderr
        assert str(plugin) in refused.stderr and "--allow-plugins" in refused.stderr
        assert not mark.exists(), f"dl {name} imported the plugin"
    assert {p: p.read_bytes() for p in run.resolve().rglob("*") if p.is_file()} == before
    assert not (tmp_path / "m.onnx").exists()
    for name in ("eval", "predict", "resume"):
        allowed = dl(*commands[name], "--allow-plugins")
        assert allowed.returncode == 0, (name, allowed.stderr)
    assert len(mark.read_text().split()) == 3  # each allowed command imported it once


@pytest.mark.parametrize("entry, message", [
    ("no_such_module", "plugins.0: plugin no_such_module cannot be imported: "
                       "ModuleNotFoundError: No module named 'no_such_module'"),
    ("broken.py", "plugins.0: plugin {folder}/broken.py cannot be imported: "
                  "RuntimeError: this plugin is broken"),
    ("missing.py", "plugins.0: plugin {folder}/missing.py: no such file"),
    ("my-layers", "plugins.0: 'my-layers' is not a module name (dotted Python names, such as "
                  "my_package.layers) nor a .py file"),
])
def test_a_plugin_that_cannot_be_imported_is_one_error_naming_it(tmp_path, entry, message):
    config = marked_config(tmp_path, plugins=[entry])
    (config.parent / "broken.py").write_text("raise RuntimeError('this plugin is broken')\n")
    for command in (["train", config, "-q"], ["gradcheck", config], ["summary", config]):
        result = dl(*command)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines == [f"error: {message.format(folder=config.parent)}"]
    assert not (tmp_path / "runs").exists()


def test_plugins_must_be_a_list(tmp_path):
    result = dl("train", marked_config(tmp_path, plugins="plugins/marked.py"), "-q")
    assert result.returncode == 2
    assert "plugins: expected a list of module names or .py files" in result.stderr


def test_a_module_on_the_python_path_and_a_path_given_on_the_command_line(tmp_path):
    """A module name is imported as Python imports it; a .py path in an override is
    relative to the current folder, and both are kept as the resolved config shows them."""
    config = marked_config(tmp_path, plugins=[])
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "marked_module.py").write_text(MARKED)
    path = os.pathsep.join([str(tmp_path / "lib"), os.environ.get("PYTHONPATH", "")])
    shown = dl("train", config, "plugins=[marked_module]", "--print-config",
               env={"PYTHONPATH": path})
    assert shown.returncode == 0, shown.stderr
    assert yaml.safe_load(shown.stdout)["plugins"] == ["marked_module"]
    trained = dl("train", config, "plugins=[marked_module]", "-q", env={"PYTHONPATH": path})
    assert trained.returncode == 0, trained.stderr
    shown = dl("train", config, "plugins=[configs/plugins/marked.py]", "--print-config",
               cwd=tmp_path)
    assert yaml.safe_load(shown.stdout)["plugins"] == [str(config.parent / "plugins" / "marked.py")]


def test_a_sweep_trains_a_plugin_layer_in_its_workers(tmp_path):
    config = marked_config(tmp_path)
    spec = tmp_path / "configs" / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"base": "marked.yaml", "name": "marked-sweep",
                                    "method": "grid", "params": {"optimizer.lr": [0.01, 0.03]}}))
    swept = dl("sweep", spec, "--workers", "2")
    assert swept.returncode == 0, swept.stderr
    (folder,) = (tmp_path / "runs" / "marked-sweep").iterdir()
    results = (folder / "results.csv").read_text()
    assert results.count("completed") == 2, results
    assert len((config.parent / "plugins" / "imported.txt").read_text().split()) >= 3
