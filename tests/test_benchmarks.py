"""The benchmark runs end to end on tiny sizes: one table, a row per framework, a peer
that is not installed skipped and named. No timing assertions: only that it runs and
reports what it should."""

import math

import numpy as np
import pytest

from benchmarks import digits_mlp, harness, w1_mlp, w2_cnn, w3_lstm, w4_resnet
from benchmarks.trainers import DLTrainer
from benchmarks.__main__ import MODULES

TINY_ARGS = ["--size", "tiny", "--repeats", "1", "--no-memory", "--threads", "1"]


@pytest.fixture(scope="module")
def tiny_results():
    """Every workload, dl against scikit-learn where it is a peer (PyTorch separately)."""
    return harness.main(MODULES, TINY_ARGS + ["--frameworks", "dl,sklearn"])


def test_every_workload_runs_on_dl_and_its_peers(tiny_results, capsys):
    assert [r.workload.name for r in tiny_results] == ["W1", "W2", "W3", "W4", "digits"]
    ran = {r.workload.name: sorted(r.times) for r in tiny_results}
    assert ran == {"W1": ["dl", "sklearn"], "W2": ["dl"], "W3": ["dl"], "W4": ["dl"],
                   "digits": ["dl", "sklearn"]}
    for result in tiny_results:
        assert all(t > 0 for times in result.times.values() for t in times)
        assert not result.skipped


def test_the_table_has_a_row_per_framework_and_the_ratios(tiny_results):
    text = harness.report(tiny_results, peak=100.0, info={"cpu": "test"}, repeats=1)
    lines = text.splitlines()
    assert lines[0] == ("| workload | framework | time | dl ÷ peer (median of pairs, range) "
                        "| GFLOP/s | % of peak | peak memory | test accuracy |")
    body = [line.split("|") for line in lines[2:] if line.startswith("| ")]
    assert [cells[2].strip() for cells in body] == ["dl", "sklearn", "dl", "dl", "dl", "dl",
                                                    "sklearn"]
    sklearn_w1 = body[1]
    ratio = float(sklearn_w1[4].split()[0])
    assert ratio == pytest.approx(tiny_results[0].ratios("sklearn")[0], abs=0.01)
    digits_dl = body[5]
    assert digits_dl[8].strip().endswith("%")  # test accuracy
    assert "Machine: cpu test." in text


def test_float64_runs_the_workloads_that_have_it_in_float64_everywhere():
    results = harness.main(MODULES, TINY_ARGS + ["--frameworks", "dl,sklearn", "--dtype", "float64"])
    assert [r.workload.name for r in results] == ["W1", "W2"]
    assert all(r.workload.dtype == "float64" for r in results)
    trainer = w2_cnn.workload("tiny", "float64").trainers["dl"]()
    assert {p.dtype for p in trainer.model.params.values()} == {np.dtype(np.float64)}


def test_pytorch_is_timed_on_the_same_workload_when_installed():
    pytest.importorskip("torch")
    with harness.blas_limit(1):  # both on one thread: quick even on a busy machine
        result = harness.run(w3_lstm.workload("tiny"), repeats=2, memory=False)
    assert set(result.times) == {"dl", "torch"}
    assert all(math.isfinite(r) and r > 0 for r in result.ratios("torch"))


def test_a_missing_peer_is_skipped_and_named(monkeypatch):
    monkeypatch.setattr(harness, "missing",
                        lambda name: "torch is not installed" if name == "torch" else None)
    result = harness.run(w3_lstm.workload("tiny"), repeats=1, memory=False)
    assert set(result.times) == {"dl"}
    assert result.skipped == {"torch": "torch is not installed"}
    assert harness.rows(result, peak=100.0)[-1][1:3] == ("torch", "skipped: torch is not installed")


def test_peak_memory_is_measured_in_a_fresh_process():
    megabytes = harness.peak_memory(w1_mlp.workload("tiny"), "dl")
    assert megabytes is None or megabytes >= 0  # None where /proc cannot reset the peak


def test_digits_compares_test_accuracy_on_the_same_split(tiny_results):
    digits = tiny_results[-1]
    assert set(digits.accuracy) == {"dl", "sklearn"}
    assert all(0.0 <= a <= 1.0 for a in digits.accuracy.values())
    assert digits_mlp.workload("tiny").trainers.keys() == {"dl", "sklearn"}


def test_dl_trains_through_the_solver_step_and_learns_the_synthetic_classes():
    X, y = harness.synthetic_classes(250, (20,), 3)
    trainer = DLTrainer([{"type": "affine", "units": 16}, "relu",
                         {"type": "affine", "units": 3}], X, y,
                        {"type": "sgd", "lr": 0.1}, batch_size=32, epochs=5, test=(X, y))
    batches = []
    step = trainer.solver.step
    trainer.solver.step = lambda idx: batches.append(len(idx)) or step(idx)
    trainer.run()
    assert len(batches) == 5 * 8 and sum(batches) == 5 * 250 and max(batches) == 32
    assert trainer.model.params["0.W"].dtype == np.float32
    assert trainer.accuracy() > 0.9


def test_workload_flops_are_the_issue_networks():
    mlp = 784 * 512 + 512 * 256 + 256 * 10
    assert harness.training_flops(w1_mlp.LAYERS, w1_mlp.IN_SHAPE) == 2 * (3 * mlp - 784 * 512)
    conv1, conv2 = 28 * 28 * 32 * 9, 14 * 14 * 64 * 9 * 32
    cnn = conv1 + conv2 + 7 * 7 * 64 * 10
    assert harness.training_flops(w2_cnn.LAYERS, w2_cnn.IN_SHAPE) == 2 * (3 * cnn - conv1)
    lstm, projection = 4 * 50 * (64 + 128) * 128, 4 * 50 * 64 * 128
    assert harness.training_flops(w3_lstm.LAYERS, (50, 64)) == 2 * (3 * (lstm + 1280) - projection)
    stem, block1 = 32 * 32 * 32 * 27, 2 * 32 * 32 * 32 * 288
    block2 = 16 * 16 * 64 * (288 + 576 + 32)  # two 3×3 convolutions, the 1×1 shortcut
    resnet = stem + block1 + block2 + 64 * 10
    assert harness.training_flops(w4_resnet.LAYERS, w4_resnet.IN_SHAPE) == 2 * (3 * resnet - stem)


def arrays_in(value):
    """Every ndarray inside nested tuples, lists and dicts."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from arrays_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from arrays_in(item)


@pytest.mark.parametrize("module", [w1_mlp, w2_cnn, w3_lstm, w4_resnet, digits_mlp])
def test_a_float32_training_step_makes_no_float64_array(module):
    """Every layer's output and input gradient, cache, parameters, gradients and the
    optimizer state stay float32 through Solver steps (a float64 array is a silent upcast)."""
    trainer = module.workload("tiny").trainers["dl"]()
    made = []
    for layer in trainer.model.layers:
        for method in ("forward", "backward"):
            original = getattr(layer, method)
            setattr(layer, method, lambda *args, f=original: made.append(f(*args)) or made[-1])
    trainer.solver.step(np.arange(8))
    trainer.solver.step(np.arange(8, 16))
    stored = [made, trainer.solver.optimizer.state, trainer.model.params]
    for layer in trainer.model.layers:
        stored += [layer.cache, layer.grads]
    floats = [a for a in arrays_in(stored) if a.dtype.kind == "f"]
    assert floats and {a.dtype for a in floats} == {np.dtype(np.float32)}


@pytest.mark.parametrize("layers,in_shape", [
    ([{"type": "affine", "units": 5}, "relu", {"type": "affine", "units": 3}], (4,)),
    ([{"type": "conv2d", "filters": 2, "kernel": 3, "pad": 1}, "relu", "maxpool",
      {"type": "affine", "units": 3}], (1, 4, 4)),
    ([{"type": "lstm", "hidden": 3, "return_sequences": False},
      {"type": "affine", "units": 3}], (4, 2)),
])
def test_the_first_layer_skips_the_input_gradient_and_nothing_else(layers, in_shape):
    from dl_cli.nn.model import Model

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, *in_shape)), rng.integers(0, 3, 5)
    model = Model(layers, in_shape, dtype="float64", seed=0)
    assert model.layers[0].input_grad is False
    _, skipped = model.loss(x, y)
    assert model.chain.backward(model.loss_fn(model.forward(x, True), y)[1]) is None
    model.layers[0].input_grad = True
    _, full = model.loss(x, y)
    for name in full:
        np.testing.assert_array_equal(skipped[name], full[name])


def test_the_sweep_benchmark_times_both_worker_counts_on_the_same_trials(capsys):
    from benchmarks import sweep_workers

    timings = sweep_workers.main(["--repeats", "1", "--trials", "2", "--long",
                                  "--long-epochs", "2", "train.epochs=1"])
    assert sorted(timings) == ["long", "short"]
    (one,), (two,) = timings["short"][1], timings["short"][2]
    assert one.metrics == two.metrics and sorted(one.metrics) == [0, 1]
    assert one.first_wait == pytest.approx(0.0, abs=0.05)  # in process: no worker to start
    for t in (one, two):
        assert 0 < t.start < t.wall and 0 < t.trials < t.wall and 0 <= t.end < t.wall
    assert "same metric for every trial on 1 and 2 workers: yes" in capsys.readouterr().out


def test_the_batch_parts_benchmark_times_both_ways_on_each_workload(capsys):
    from benchmarks import batch_parts

    pairs = batch_parts.main(["--repeats", "2", "--size", "tiny"])
    assert sorted(pairs) == ["W1", "W2"]
    assert all(len(p) == 2 and min(min(pair) for pair in p) > 0 for p in pairs.values())
    assert capsys.readouterr().out.count("parts ÷ BLAS threads, median") == 2
