"""The same training job in each framework: `dl` through its Solver, PyTorch with the
usual loop, scikit-learn's ``MLPClassifier``.

Each trainer's ``run()`` trains ``epochs`` epochs, continuing from the previous call, or
from fresh weights with ``from_scratch=True`` (a whole fit, as scikit-learn's ``fit``).
Batches are drawn from a fresh permutation every epoch, without replacement.
PyTorch and scikit-learn are imported only when their trainer is built.
"""

from __future__ import annotations

import warnings

import numpy as np

from dl_cli.data.loading import Split, Splits
from dl_cli.nn.model import Model
from dl_cli.registry import OPTIMIZERS
from dl_cli.schema import TrainConfig
from dl_cli.solver import Solver
from dl_cli.threads import blas_threads



class EpochTrainer:
    """``run()``: rebuild when ``from_scratch``, then ``epochs`` calls to ``epoch()``."""

    from_scratch: bool
    epochs: int

    def build(self) -> None:
        raise NotImplementedError

    def epoch(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        if self.from_scratch:
            self.build()
        for _ in range(self.epochs):
            self.epoch()


class DLTrainer(EpochTrainer):
    """`dl`'s Model, optimizer and ``Solver.step`` over the batches of each epoch.

    ``test=(X, y)`` serves as validation and test split and for ``accuracy``; without
    it the first samples of the training set fill those splits (nothing scores them).
    """

    def __init__(self, layers: list, X: np.ndarray, y: np.ndarray, optimizer: dict,
                 batch_size: int, loss="softmax_cross_entropy", epochs: int = 1,
                 from_scratch: bool = False, test=None, seed: int = 0):
        held_out = Split(*test) if test is not None else Split(X[:batch_size], y[:batch_size])
        self.splits = Splits(Split(X, y), held_out, held_out, task="classification",
                             num_classes=int(y.max()) + 1, info={})
        self.layers, self.loss, self.optimizer = layers, loss, optimizer
        self.batch_size, self.epochs, self.from_scratch = batch_size, epochs, from_scratch
        self.seed = seed
        self.build()

    def build(self) -> None:
        X = self.splits.train.X
        self.model = Model(self.layers, X.shape[1:], loss=self.loss, dtype=X.dtype,
                           seed=self.seed)
        self.solver = Solver(self.model, self.splits, OPTIMIZERS.create(self.optimizer),
                             TrainConfig(epochs=self.epochs, batch_size=self.batch_size,
                                         dtype=str(X.dtype)),
                             seed=self.seed, run=None, progress=False)

    def epoch(self) -> None:
        """The Solver's epoch without its end-of-epoch evaluation: a permutation, then
        ``step`` on each batch (the last one takes what remains), on the Solver's threads."""
        solver = self.solver
        n, size, last = len(self.splits.train), solver.batch_size, solver.iters_per_epoch - 1
        perm = solver.rng.permutation(n)
        with solver.computing():
            for it in range(solver.iters_per_epoch):
                solver.step(perm[it * size:n if it == last else (it + 1) * size])

    def accuracy(self) -> float:
        test = self.splits.test
        return float(np.mean(self.model.predict(test.X) == test.y))


def dl_and_torch(layers: list, torch_module, X: np.ndarray, y: np.ndarray, optimizer: dict,
                 batch_size: int) -> dict:
    """A workload's ``dl`` and ``torch`` trainers, each built when the harness asks: the
    same layers (``torch_module`` builds PyTorch's), data, optimizer and batch size."""
    return {"dl": lambda: DLTrainer(layers, X, y, optimizer, batch_size),
            "torch": lambda: TorchTrainer(torch_module, X, y, optimizer, batch_size)}


class TorchTrainer(EpochTrainer):
    """PyTorch's usual loop: zero the gradients, forward, cross-entropy, backward, step.

    ``make_module()`` returns the ``torch.nn.Module``; ``optimizer`` is a `dl` optimizer
    spec (``sgd``, ``momentum`` or ``adam`` with their options), mapped to ``torch.optim``. PyTorch
    runs on as many threads as NumPy's BLAS.
    """

    def __init__(self, make_module, X: np.ndarray, y: np.ndarray, optimizer: dict,
                 batch_size: int, epochs: int = 1, from_scratch: bool = False, test=None,
                 seed: int = 0):
        import torch

        torch.set_num_threads(blas_threads())
        self.torch = torch
        self.make_module, self.optimizer = make_module, dict(optimizer)
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.test = None if test is None else (torch.from_numpy(test[0]), test[1])
        self.batch_size, self.epochs, self.from_scratch = batch_size, epochs, from_scratch
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.build()

    def build(self) -> None:
        self.torch.manual_seed(self.seed)
        self.module = self.make_module().to(self.X.dtype)  # float64 data: float64 weights
        options = dict(self.optimizer)
        kind = options.pop("type")
        if kind == "adam":
            betas = (options.pop("beta1", 0.9), options.pop("beta2", 0.999))
            self.opt = self.torch.optim.Adam(self.module.parameters(), betas=betas, **options)
        elif kind == "sgd":
            self.opt = self.torch.optim.SGD(self.module.parameters(), **options)
        elif kind == "momentum":  # dl's v ← μ·v − lr·g, w ← w + v: torch's SGD with momentum
            self.opt = self.torch.optim.SGD(self.module.parameters(), lr=options["lr"],
                                            momentum=options.get("momentum", 0.9))
        else:
            raise ValueError(f"no PyTorch counterpart for optimizer {kind!r}")

    def epoch(self) -> None:
        F = self.torch.nn.functional
        n, size = len(self.X), self.batch_size
        perm = self.torch.from_numpy(self.rng.permutation(n))
        for start in range(0, n, size):
            idx = perm[start:start + size]
            self.opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.module(self.X[idx]), self.y[idx])
            loss.backward()
            self.opt.step()
            loss.item()

    def accuracy(self) -> float | None:
        if self.test is None:
            return None
        with self.torch.no_grad():
            predicted = self.module(self.test[0]).argmax(dim=1).numpy()
        return float(np.mean(predicted == self.test[1]))


class SklearnTrainer:
    """scikit-learn's ``MLPClassifier`` with ReLU hidden layers and no L2 penalty.

    ``sgd`` is plain gradient descent (no momentum) at a constant rate; ``adam`` uses
    the same moments and epsilon as `dl`'s. Each epoch continues with ``partial_fit``,
    or, ``from_scratch``, one ``fit`` of ``epochs`` epochs without early stopping.
    """

    def __init__(self, hidden: tuple[int, ...], X: np.ndarray, y: np.ndarray, optimizer: dict,
                 batch_size: int, epochs: int = 1, from_scratch: bool = False, test=None,
                 seed: int = 0):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        options = dict(optimizer)
        kind = options.pop("type")
        solver = {"sgd": {"solver": "sgd", "momentum": 0.0, "nesterovs_momentum": False},
                  "adam": {"solver": "adam", "beta_1": options.pop("beta1", 0.9),
                           "beta_2": options.pop("beta2", 0.999),
                           "epsilon": options.pop("eps", 1e-8)}}[kind]
        self.make = lambda: MLPClassifier(
            hidden_layer_sizes=hidden, activation="relu", alpha=0.0, batch_size=batch_size,
            learning_rate_init=options["lr"], max_iter=epochs, shuffle=True,
            random_state=seed, tol=0.0, n_iter_no_change=epochs + 1, **solver)
        self.warning = ConvergenceWarning
        self.X, self.y, self.test = X, y, test
        self.classes = np.unique(y)
        self.epochs, self.from_scratch = epochs, from_scratch
        self.clf = self.make()

    def run(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.warning)  # max_iter reached, as asked
            if self.from_scratch:
                self.clf = self.make().fit(self.X, self.y)
                return
            for _ in range(self.epochs):
                self.clf.partial_fit(self.X, self.y, classes=self.classes)

    def accuracy(self) -> float | None:
        if self.test is None:
            return None
        return float(self.clf.score(*self.test))
