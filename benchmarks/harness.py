"""What every workload shares: paired timing, the FLOP count, the matmul peak, peak
memory in a fresh process, the machine's description and the results table.

Timing. Every framework trains once untimed (allocations, lazy optimizer state, BLAS
threads), then the frameworks take turns: repetition r times each of them once, the
order rotating by one each repetition, so slow spells of a shared machine hit them
alike. The ratio ``dl ÷ peer`` is taken within each repetition and the table shows the
median of those ratios with their range; a framework's own time is its median.

FLOPs. A training step of a layer with ``M`` multiply-adds per sample costs ``2M`` FLOPs
forward, ``2M`` for the weight gradients and ``2M`` for the gradients of its inputs,
except that the data need no gradient: the first layer skips the products with its
input, ``M_x`` (all of ``M`` for affine and conv layers, the input projection
``T·D·G·H`` of a recurrent one). So ``2·(3·ΣM − M_x)`` per sample, counted on `dl`'s
model and used for every framework (the same work).

Memory. ``peak memory`` is the resident memory a framework adds while it trains: in a
fresh process, after the data and the model are built, the kernel's high-water mark is
reset (``/proc/self/clear_refs``) and two timed units run; the peak minus the resident
size before them is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.util
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Callable, Protocol

import numpy as np

from dl_cli.threads import blas_threads

FRAMEWORKS = ("dl", "torch", "sklearn")
PACKAGES = {"dl": "dl_cli", "torch": "torch", "sklearn": "sklearn"}
INSTALL_HINT = "pip install -e '.[bench]'"


class Trainer(Protocol):
    """One framework set up on one workload's data."""

    def run(self) -> None:
        """One timed unit of training (an epoch, a few batches, or a whole fit)."""

    def accuracy(self) -> float | None:
        """Test accuracy after the runs so far, where the workload has a test set."""


@dataclass
class Workload:
    """A training job and how each framework runs it.

    ``trainers`` maps a framework name to a factory of its Trainer; one ``run()`` of a
    trainer is the timed call, which stands for ``per_call`` reported units (``unit``,
    seconds times ``scale``) and does ``flops`` useful floating-point operations.
    ``module`` names the Python module that builds the workload (``workload(size)``, or
    ``workload(size, dtype)`` where the module lists the float types it runs in
    ``DTYPES``), so a fresh process can rebuild it to measure memory.
    """

    name: str
    title: str
    module: str
    size: str
    unit: str
    flops: float
    trainers: dict[str, Callable[[], Trainer]]
    per_call: float = 1.0
    scale: float = 1.0
    note: str = ""
    dtype: str = "float32"


@dataclass
class Result:
    workload: Workload
    times: dict[str, list[float]]
    accuracy: dict[str, float | None] = field(default_factory=dict)
    memory: dict[str, float | None] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def median(self, framework: str) -> float:
        return statistics.median(self.times[framework])

    def ratios(self, peer: str) -> list[float]:
        """``dl ÷ peer`` within each repetition."""
        return [mine / theirs for mine, theirs in zip(self.times["dl"], self.times[peer])]


# -- data and FLOPs ----------------------------------------------------------------------
def synthetic_classes(n: int, shape: tuple[int, ...], classes: int, seed: int = 0,
                      dtype: str = "float32"):
    """``n`` samples of ``shape`` around one random centre per class, and their int64
    labels: learnable data of a real workload's size. The values are drawn in float32
    and then converted, so both float types train on the same numbers."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.standard_normal((classes, *shape), dtype=np.float32)
    X = rng.standard_normal((n, *shape), dtype=np.float32)
    X += centres[y]
    return X.astype(dtype, copy=False), y


def build_workload(module: str, size: str, dtype: str = "float32") -> Workload:
    """The workload of ``module`` at ``size``, in ``dtype`` where it is not float32."""
    built = importlib.import_module(module)
    return built.workload(size) if dtype == "float32" else built.workload(size, dtype)


def runs_in(module: str, dtype: str) -> bool:
    """Whether ``module``'s workload runs in ``dtype`` (each runs in float32)."""
    return dtype in getattr(importlib.import_module(module), "DTYPES", ("float32",))


def training_flops(layers: list, in_shape: tuple[int, ...]) -> float:
    """FLOPs of one training step on one sample: ``2·(3·ΣM − M_x)`` (module doc)."""
    from dl_cli.nn.model import Model
    from dl_cli.nn.recurrent import Recurrent

    model = Model(layers, in_shape)
    macs = [row["macs"] for row in model.summary()]
    first = model.layers[0]
    if isinstance(first, Recurrent):
        steps, features = in_shape
        input_macs = steps * features * first.gates * first.hidden
    else:
        input_macs = macs[0]
    return 2.0 * (3 * sum(macs) - input_macs)


# -- the machine -------------------------------------------------------------------------
def blas_limit(count: int):
    """Limit NumPy's BLAS to ``count`` threads until the returned object's
    ``restore_original_limits()`` or the end of its ``with`` block (PyTorch's trainers
    built meanwhile take the same number)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(count, user_api="blas")


def matmul_peak(size: int = 2048, repeats: int = 5, dtype: str = "float32") -> float:
    """The best GFLOP/s of NumPy's ``size³`` matrix product in ``dtype``: the BLAS
    ceiling the achieved rates are compared with."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = min(timed(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def machine(frameworks=FRAMEWORKS) -> dict[str, str]:
    """What the numbers were measured on: processor, cores, memory, load, libraries
    (those of ``frameworks`` that are installed)."""
    info = {"python": platform.python_version(), "cores": str(os.cpu_count())}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo
                               if line.startswith("model name"))
        with open("/proc/meminfo") as meminfo:
            kib = int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal")))
        info["memory"] = f"{kib / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or platform.machine()
    info["load before"] = load_average()
    blas = "BLAS"
    try:
        from threadpoolctl import threadpool_info
        pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
        if pools:
            p = pools[0]
            blas = f"{p['internal_api']} {p['version']}, {p.get('architecture', '?')} kernels"
    except ImportError:
        pass
    info["numpy"] = f"{np.__version__} ({blas}, {blas_threads()} threads)"
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(name):
            info[name] = os.environ[name]
    if "torch" in frameworks and not missing("torch"):
        import torch
        blas = "MKL" if torch.backends.mkl.is_available() else "its own BLAS"
        info["torch"] = f"{torch.__version__} ({blas}, as many threads as NumPy)"
    if "sklearn" in frameworks and not missing("sklearn"):
        import sklearn
        info["scikit-learn"] = sklearn.__version__
    return info


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: runnable threads, ours included."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- timing --------------------------------------------------------------------------------
def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def paired_times(trainers: dict[str, Trainer], repeats: int) -> dict[str, list[float]]:
    """One untimed warm-up each, then ``repeats`` rounds in which every trainer runs
    once, the order rotating by one each round. The garbage collector is off while
    timing (as in ``timeit``): reference counting frees the arrays as usual."""
    names = list(trainers)
    for name in names:
        trainers[name].run()
    times: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    gc.disable()
    try:
        for r in range(repeats):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(timed(trainers[name].run))
    finally:
        gc.enable()
    return times


# -- memory --------------------------------------------------------------------------------
def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith(key + ":")))


def probe_memory(module: str, size: str, framework: str, threads: int,
                 dtype: str = "float32") -> float | None:
    """Peak resident MiB that two training units add (run in a fresh process)."""
    blas_limit(threads)
    trainer = build_workload(module, size, dtype).trainers[framework]()
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # reset the high-water mark VmHWM to the current VmRSS
        before = _status_kib("VmRSS")
    except OSError:
        return None
    trainer.run()
    trainer.run()
    return (_status_kib("VmHWM") - before) / 1024


def peak_memory(workload: Workload, framework: str) -> float | None:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(probe_memory, workload.module, workload.size, framework,
                           blas_threads(), workload.dtype).result()


# -- one workload -------------------------------------------------------------------------
def missing(framework: str) -> str | None:
    """Why a framework cannot run here, or None."""
    package = PACKAGES[framework]
    if importlib.util.find_spec(package) is None:
        return f"{package} is not installed ({INSTALL_HINT})"
    return None


def run(workload: Workload, repeats: int, frameworks=FRAMEWORKS, memory: bool = True) -> Result:
    """Time ``workload`` on every framework it has that is asked for and installed."""
    trainers, skipped = {}, {}
    for name, factory in workload.trainers.items():
        if name not in frameworks:
            continue
        reason = missing(name)
        if reason:
            skipped[name] = reason
        else:
            trainers[name] = factory()
    result = Result(workload, paired_times(trainers, repeats), skipped=skipped)
    result.accuracy = {name: trainer.accuracy() for name, trainer in trainers.items()}
    del trainers
    gc.collect()
    for name in result.times:
        result.memory[name] = peak_memory(workload, name) if memory else None
    return result


# -- the table ----------------------------------------------------------------------------
HEADER = ("workload", "framework", "time", "dl ÷ peer (median of pairs, range)",
          "GFLOP/s", "% of peak", "peak memory", "test accuracy")


def rows(result: Result, peak: float) -> list[tuple[str, ...]]:
    w = result.workload
    out = []
    for name in result.times:
        seconds = result.median(name)
        value = seconds * w.scale / w.per_call
        ratio = ""
        if name != "dl" and "dl" in result.times:
            ratios = result.ratios(name)
            ratio = (f"{statistics.median(ratios):.2f} "
                     f"({min(ratios):.2f}–{max(ratios):.2f})")
        gflops = w.flops / seconds / 1e9
        memory = result.memory.get(name)
        accuracy = result.accuracy.get(name)
        out.append((
            f"{w.name} {w.title}" if not out else "",
            name,
            f"{value:.3g} {w.unit}",
            ratio,
            f"{gflops:.0f}",
            f"{100 * gflops / peak:.0f}%",
            "" if memory is None else f"{memory:.0f} MiB",
            "" if accuracy is None else f"{100 * accuracy:.1f}%",
        ))
    for name, reason in result.skipped.items():
        out.append(("" if out else f"{w.name} {w.title}", name, f"skipped: {reason}",
                    "", "", "", "", ""))
    return out


def markdown(header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def report(results: list[Result], peak: float, info: dict[str, str], repeats: int) -> str:
    body = [row for result in results for row in rows(result, peak)]
    described = "; ".join(f"{key} {value}" for key, value in info.items())
    notes = [f"- {r.workload.name}: {r.workload.note}" for r in results if r.workload.note]
    return "\n".join([
        markdown(HEADER, body),
        "",
        f"Median of {repeats} paired repetitions after one warm-up each. Matmul peak "
        f"(NumPy {results[0].workload.dtype if results else 'float32'} square product, "
        f"the better of the start and the end): {peak:.0f} GFLOP/s.",
        f"Machine: {described}.",
        *notes,
    ])


# -- command line -----------------------------------------------------------------------
def parse_args(argv, description: str, default_repeats: int = 7) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", choices=("full", "tiny"), default="full",
                        help="full: the issue's workloads; tiny: a smoke run in seconds")
    parser.add_argument("--repeats", type=int, default=default_repeats,
                        help="paired repetitions after the warm-up (default %(default)s)")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                        help="comma-separated subset of dl,torch,sklearn")
    parser.add_argument("--threads", type=int, default=0,
                        help="BLAS threads for NumPy and PyTorch (default: NumPy's own)")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the peak-memory runs in fresh processes")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="float type of every framework (float64: the workloads that "
                             "run in it, W1 and W2)")
    args = parser.parse_args(argv)
    args.frameworks = tuple(f for f in args.frameworks.split(",") if f)
    unknown = set(args.frameworks) - set(FRAMEWORKS)
    if unknown or "dl" not in args.frameworks:
        parser.error(f"--frameworks takes dl and any of torch, sklearn; got {args.frameworks}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.threads < 0:
        parser.error("--threads must be positive (0: NumPy's own number)")
    return args


def main(modules: list[str], argv=None, description: str = "dl benchmarks") -> list[Result]:
    """Run the workloads of ``modules`` and print one table; return the results."""
    args = parse_args(sys.argv[1:] if argv is None else argv, description)
    modules = [module for module in modules if runs_in(module, args.dtype)]
    with blas_limit(args.threads) if args.threads else contextlib.nullcontext():
        info = machine(args.frameworks)
        peak_size = 2048 if args.size == "full" else 256
        peak = matmul_peak(peak_size, dtype=args.dtype)
        results = []
        for module in modules:
            workload = build_workload(module, args.size, args.dtype)
            print(f"running {workload.name}: {workload.title} ...", file=sys.stderr, flush=True)
            results.append(run(workload, args.repeats, args.frameworks, not args.no_memory))
        peak = max(peak, matmul_peak(peak_size, dtype=args.dtype))  # before and after: the better
    info["load after"] = load_average()
    print(report(results, peak, info, args.repeats))
    return results
