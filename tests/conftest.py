"""Fixtures shared by the tests: a small config and its file; a finished run, a run stopped
midway, a text run and a finished sweep to read, or to copy and damage (with the tools to
forge their files); a study of experiments/ on a small budget; the memory a call allocates;
Ctrl-C at a chosen moment of training or of a sweep; gradient checks of a layer in
training mode through ``gradcheck``, and eval mode, which ``gradcheck.check_layer`` does
not cover."""

import functools
import io
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from dl_cli import gradcheck
from dl_cli.cli.app import app
from dl_cli.solver import Solver
from dl_cli.sweep.runner import SweepRunner

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def make_tiny_config(samples: int = 40, **changes) -> dict:
    """A run that trains in a blink: a 3-class spiral of ``samples`` points per class
    (noise 0.2; val 0.25 and test 0.25 of them held out; standardized), affine 16 → relu →
    affine 3, Adam at 0.01, 3 epochs of batches of 16. ``changes`` replace whole top-level
    keys: ``make_tiny_config(seed=5, train={"epochs": 4, "batch_size": 8})``."""
    return {"name": "spiral", "seed": 3,
            "data": {"dataset": {"type": "spiral", "classes": 3, "samples": samples, "noise": 0.2},
                     "split": {"val": 0.25, "test": 0.25}, "preprocess": ["standardize"]},
            "model": {"layers": [{"type": "affine", "units": 16}, "relu",
                                 {"type": "affine", "units": 3}]},
            "optimizer": {"type": "adam", "lr": 0.01},
            "train": {"epochs": 3, "batch_size": 16},
            **changes}


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(samples=40, **changes)``: a new small config (``make_tiny_config``)."""
    return make_tiny_config


@pytest.fixture(scope="session")
def write_config():
    """``write_config(folder, cfg=None, name="cfg.yaml")``: ``cfg`` (else ``tiny_config()``)
    as a YAML file in ``folder`` (made if missing), its runs going to ``folder/runs``."""
    def write(folder: Path, cfg: dict | None = None, name: str = "cfg.yaml") -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        cfg = cfg or make_tiny_config()
        path.write_text(yaml.safe_dump({**cfg, "runs_dir": str(folder / "runs")}))
        return path
    return write


@pytest.fixture(scope="session")
def write_sweep(write_config):
    """``write_sweep(folder, spec, base=None)``: the sweep ``spec`` (named t) as
    ``folder/sweep.yaml``, over the config ``base`` (else ``tiny_config()``) written as
    ``folder/base.yaml``."""
    def write(folder: Path, spec: dict, base: dict | None = None) -> Path:
        base_path = write_config(folder, base, "base.yaml")
        path = folder / "sweep.yaml"
        path.write_text(yaml.safe_dump({"base": str(base_path), "name": "t", **spec}))
        return path
    return write


@pytest.fixture(scope="session")
def tiny(tiny_config):
    """The run that tests stop, damage and resume (``finished_run``): runs/tiny, seed 5, 30
    spiral points per class of which 45 train, in 6 iterations per epoch of 8, for 4 epochs."""
    return tiny_config(name="tiny", seed=5, samples=30, train={"epochs": 4, "batch_size": 8})


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, write_config, tiny) -> Path:
    """A completed run of ``tiny``; tests copy it (``run_copy``) before changing anything."""
    folder = tmp_path_factory.mktemp("finished")
    result = CliRunner().invoke(app, ["train", str(write_config(folder, tiny)), "--run-dir",
                                      str(folder / "run"), "-q"])
    assert result.exit_code == 0, result.output
    return folder / "run"


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    """A copy of ``finished_run`` to change."""
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


@pytest.fixture(scope="session")
def dl():
    """``dl(*args)``: the ``dl`` command run in this process (Typer's CliRunner) with the
    arguments as text; its Result (``exit_code``, ``output``)."""
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args])
    return invoke


@pytest.fixture
def interrupted_run(tmp_path, write_config, tiny, interrupt_at, dl) -> Path:
    """A ``tiny`` run stopped by Ctrl-C in its second epoch: its last.npz holds optimizer state."""
    run_dir = tmp_path / "run"
    with interrupt_at(8):
        assert dl("train", write_config(tmp_path, tiny), "--run-dir", run_dir, "-q").exit_code == 130
    return run_dir


@pytest.fixture(scope="session")
def text_config() -> dict:
    """A character-level LSTM on the built-in corpus, one epoch: embedding 4 → lstm 8 →
    temporal affine over the vocabulary."""
    from dl_cli.data.sequences import CORPUS

    vocab = len(set(CORPUS.read_text(encoding="utf-8")))
    return {"name": "tiny-text", "seed": 0,
            "data": {"dataset": {"type": "text", "steps": 16, "stride": 16},
                     "split": {"val": 0.2, "test": 0.0}},
            "model": {"init": "xavier_normal",
                      "layers": [{"type": "embedding", "vocab": vocab, "dim": 4},
                                 {"type": "lstm", "hidden": 8},
                                 {"type": "temporal_affine", "units": vocab}],
                      "loss": "temporal_softmax_cross_entropy"},
            "optimizer": {"type": "adam", "lr": 1.0e-2},
            "train": {"epochs": 1, "batch_size": 32}}


@pytest.fixture(scope="session")
def text_run(tmp_path_factory, text_config, dl) -> Path:
    """A finished run of ``text_config``; tests copy it before changing anything."""
    folder = tmp_path_factory.mktemp("text")
    (folder / "text.yaml").write_text(yaml.safe_dump(text_config))
    result = dl("train", folder / "text.yaml", "--run-dir", folder / "text-run", "-q")
    assert result.exit_code == 0, result.output
    return folder / "text-run"


@pytest.fixture(scope="session")
def fork_dl():
    """``fork_dl(args, log, slow)``: ``dl ARGS`` in a forked child (the CLI in a process of
    its own, to be killed, without paying the interpreter's start-up each time), its
    output appended to ``log``; ``slow()`` runs in the child first (to make a step or a
    write take longer, so that a kill lands inside it). Returns the child's PID."""
    def fork(args: list, log: Path, slow=None) -> int:
        pid = os.fork()
        if pid:
            return pid
        code = 70
        try:
            sys.stdout = sys.stderr = open(log, "a")
            if slow is not None:
                slow()
            app([str(a) for a in args], prog_name="dl")
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            os._exit(code)
    return fork


@pytest.fixture(scope="session")
def metric_lines():
    """``metric_lines(run_dir)``: the run's metrics.jsonl records without their times."""
    from dl_cli.runs import Run

    def read(run_dir: Path) -> list[dict]:
        lines = Run(run_dir).read_metrics()
        for line in lines:
            line.pop("time", None)
        return lines
    return read


@pytest.fixture(scope="session")
def snapshot():
    """``snapshot(folder)``: every file under ``folder`` but temp files, and its bytes."""
    def take(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
                if p.is_file() and p.suffix != ".tmp"}
    return take


@pytest.fixture(scope="session")
def rewrite_checkpoint():
    """``rewrite_checkpoint(path, change)``: load a checkpoint's arrays, let
    ``change(arrays)`` edit them, write them back."""
    from dl_cli.storage import load_npz, save_npz

    def rewrite(path: Path, change) -> None:
        arrays = load_npz(path)
        change(arrays)
        save_npz(path, arrays)
    return rewrite


@pytest.fixture(scope="session")
def as_older_run(rewrite_checkpoint):
    """``as_older_run(run_dir)``: make a text run's best.npz one written before checkpoints
    held the vocabulary, so that dl sample reads the run's vocab.json."""
    def drop_inputs(arrays):
        for key in [k for k in arrays if k == "inputs" or k.startswith("preprocess/")]:
            del arrays[key]

    def older(run_dir: Path) -> None:
        rewrite_checkpoint(run_dir / "checkpoints/best.npz", drop_inputs)
    return older


@pytest.fixture(scope="session")
def forge():
    """``forge(path, members)``: a zip archive at ``path`` of ``members`` (name → bytes),
    as a forger would write an ``.npz``; ``forge.npy(header_shape, dtype, payload)``: an
    ``.npy`` member whose header claims ``header_shape`` but which holds ``payload``."""
    def write(path: Path, members: dict[str, bytes]) -> None:
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)

    def npy(header_shape, dtype, payload: bytes) -> bytes:
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, {"descr": np.dtype(dtype).str,
                                                      "fortran_order": False,
                                                      "shape": header_shape})
        return buffer.getvalue() + payload

    write.npy = npy
    return write


@pytest.fixture(scope="session")
def traced_peak():
    """``traced_peak(call, raises=None)``: what ``call()`` returns (or the exception of
    type ``raises`` it must raise) and the most memory Python allocated meanwhile
    (``tracemalloc``), as ``(result, peak bytes)``."""
    def run(call, raises=None):
        tracemalloc.start()
        try:
            if raises is None:
                result = call()
            else:
                with pytest.raises(raises) as raised:
                    call()
                result = raised.value
            return result, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return run


@pytest.fixture(scope="session")
def processes_of_session():
    """``processes_of_session(sid)``: the live processes of session ``sid`` (every process
    a sweep driver started in a session of its own, whatever its parent now is)."""
    def live(session: int) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rindex(b")") + 2:].split()
            if int(fields[3]) == session and fields[0] not in (b"Z", b"X"):
                found.append(int(entry.name))
        return found
    return live


@pytest.fixture(scope="session")
def session_left(processes_of_session):
    """``session_left(sid, within=15)``: the processes of session ``sid`` still alive once
    they had ``within`` seconds to end (a driver's workers see it gone and save first)."""
    def left(session: int, within: float = 15) -> list[int]:
        deadline = time.monotonic() + within
        while processes_of_session(session) and time.monotonic() < deadline:
            time.sleep(0.05)
        return processes_of_session(session)
    return left


@pytest.fixture(scope="session")
def private_mounts() -> None:
    """Skip a test unless this machine lets it mount file systems in a mount namespace of
    its own (``unshare -m``, as root in most containers and CI runners)."""
    works = shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True
    ).returncode == 0
    if not works:
        pytest.skip("cannot mount in a private mount namespace here")


def random_search() -> dict:
    return {"method": "random", "trials": 4, "seed": 0,
            "params": {"optimizer.lr": {"loguniform": [1.0e-3, 1.0e-1]},
                       "model.layers.0.units": {"values": [4, 16]}}}


@pytest.fixture
def random_spec() -> dict:
    """A random search of 4 trials over the learning rate and the first layer's units."""
    return random_search()


@pytest.fixture(scope="session")
def reference(tmp_path_factory, write_sweep):
    """A finished sweep of ``random_spec`` over ``tiny_config()``, run in process (workers
    1); tests read it, or copy it before changing anything."""
    tmp = tmp_path_factory.mktemp("reference")
    spec = write_sweep(tmp, random_search())
    result = CliRunner().invoke(app, ["sweep", str(spec), "--sweep-dir", str(tmp / "sweep")])
    assert result.exit_code == 0, result.output
    return tmp / "sweep"


@pytest.fixture(scope="session")
def run_study():
    """``run_study(name, folder, variants=None, params=None, seeds=(0,), overrides=())``:
    experiments/NAME.yaml with only ``variants``, ``params`` replaced, ``seeds`` and
    base-config ``overrides``, run in process into ``folder``; the loaded study."""
    from dl_cli.config.yaml12 import read_yaml
    from dl_cli.studies.study import load_study
    from dl_cli.sweep.executors import make_backend
    from dl_cli.sweep.folder import open_sweep
    from dl_cli.sweep.base_config import prepare

    def run(name: str, folder: Path, variants: list[str] | None = None,
            params: dict | None = None, seeds: list[int] = (0,), overrides: list[str] = ()):
        spec = read_yaml(EXPERIMENTS / f"{name}.yaml")
        spec["base"] = str((EXPERIMENTS / spec["base"]).resolve())
        if variants is not None:
            spec["variants"] = {v: spec["variants"][v] for v in variants}
        if params is not None:
            spec["params"] = params
        spec["seeds"] = list(seeds)
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        sweep_spec, base = prepare(path, [f"runs_dir={folder / 'runs'}", *overrides])
        study = open_sweep(sweep_spec, base, folder / name)
        backend = make_backend("local", 1)
        try:
            outcome = SweepRunner(sweep_spec, base, study, backend,
                                  console=Console(file=io.StringIO())).run()
        finally:
            backend.close()
        assert outcome.complete
        return load_study(study)
    return run


@pytest.fixture
def interrupt_at(monkeypatch):
    """``with interrupt_at(n): ...``: a Ctrl-C (``Solver.request_stop``) right after the
    ``n``-th training iteration inside the block, counted over every Solver (the folds of
    a k-fold run one after another). Training saves ``last.npz`` and stops."""
    @contextmanager
    def interrupting(step_count: int):
        steps = 0
        original = Solver.step

        def step(solver, idx):
            nonlocal steps
            loss = original(solver, idx)
            steps += 1
            if steps == step_count:
                solver.request_stop(signal.SIGINT)
            return loss

        with monkeypatch.context() as patch:
            patch.setattr(Solver, "step", step)
            yield
    return interrupting


def observing_each(cls, monkeypatch):
    """``with observing(observer): ...``: every ``cls`` made inside the block calls
    ``observer(instance, event, payload)`` for each of its events (``cls.observers``)."""
    @contextmanager
    def observing(observer):
        made = cls.__init__

        def init(instance, *args, **kwargs):
            made(instance, *args, **kwargs)
            instance.observers.append(functools.partial(observer, instance))

        with monkeypatch.context() as patch:
            patch.setattr(cls, "__init__", init)
            yield
    return observing


@pytest.fixture
def observe_solvers(monkeypatch):
    """``with observe_solvers(observer): ...``: every Solver made inside the block (by ``dl
    train``, ``training.train``, a fold, an in-process trial) calls ``observer(solver, event,
    payload)`` for each of its events (see ``dl_cli.solver``); an observer may
    ``solver.request_stop()``, as a Ctrl-C."""
    return observing_each(Solver, monkeypatch)


@pytest.fixture
def observe_sweeps(monkeypatch):
    """``with observe_sweeps(observer): ...``: every SweepRunner made inside the block (by
    ``dl sweep``) calls ``observer(sweep_runner, event, payload)`` for each of its events (see
    ``dl_cli.sweep.runner``); an observer may ``sweep_runner.request_stop()``, as a Ctrl-C."""
    return observing_each(SweepRunner, monkeypatch)


def assert_all_passed(checks, title=""):
    assert checks, "nothing was checked"
    for check in checks:
        assert check.passed, f"{title}{check.param}: rel error {check.error:.2e}"


def check_layer_at_eval(layer, x, rng, eps=1e-6, tolerance=gradcheck.TOLERANCE):
    """``gradcheck.check_layer`` for an eval-mode forward: the scalar ``Σ forward(x,
    train=False) ⊙ G`` for a fixed random G, every coordinate of every parameter and of
    the input (when real-valued). ``backward`` runs right after one eval-mode forward of
    x, on whatever state earlier calls left in the layer (a stale training cache, running
    statistics), and must give the gradient of what that forward computed."""
    out = layer.forward(x, train=False)
    upstream = rng.standard_normal(out.shape)
    dx = layer.backward(upstream)

    def f():
        return float(np.sum(layer.forward(x, train=False) * upstream))

    analytic = {k: np.array(v) for k, v in layer.named("grads").items()}
    arrays = dict(layer.named("params"))
    if x.dtype.kind == "f":
        arrays["input"], analytic["input"] = x, np.array(dx)
    checks = []
    for name, array in arrays.items():
        coords = np.arange(array.size)
        numeric = gradcheck.numeric_grad(f, array, coords, eps)
        checks.append(gradcheck.check(layer.registered_name, name, array.shape,
                                      analytic[name], numeric, tolerance))
    return checks


@pytest.fixture
def assert_gradients_match():
    """``assert_gradients_match(layer, x)``: every parameter and the input of a built
    float64 layer in training mode, at every coordinate, against centered differences."""
    def check(layer, x):
        assert_all_passed(gradcheck.check_layer(layer, x, np.random.default_rng(7),
                                                max_coords=None))
    return check


@pytest.fixture
def assert_eval_gradients_match():
    """``assert_eval_gradients_match(layer, x, rng, title)``: ``check_layer_at_eval``,
    every check passed; a failure starts with ``title``."""
    def check(layer, x, rng, title=""):
        assert_all_passed(check_layer_at_eval(layer, x, rng), title)
    return check
