"""Recurrent layers over sequences ``(N, T, D)``: the vanilla RNN and the LSTM.

Both follow one plan, so the time loop is the only Python loop:

- forward: the input projection of every step, ``x Wx + b``, is one product
  ``(N·T, D) @ Wx`` before the loop; each step adds one product ``h_{t−1} @ Wh`` and
  applies the nonlinearities to the whole ``(N, G·H)`` block at once (G = 1 for the RNN,
  4 for the LSTM's gates);
- backward (backpropagation through time): the loop runs from the last step to the
  first and stores each step's pre-activation gradient ``da_t`` in one ``(N, T, G·H)``
  array. BPTT sums each step's weight gradients, ``dWx = Σ_t x_tᵀ da_t`` and
  ``dWh = Σ_t h_{t−1}ᵀ da_t``; with the steps stacked into ``N·T`` rows each sum is one
  product, and so is ``dx = da Wxᵀ``.

``initial_state="learned"`` adds parameters for the state before the first step (``h0``,
and ``c0`` for the LSTM), shared by every sequence of the batch: its gradient is the sum
over the batch of the gradient that reaches step 0.
"""

from __future__ import annotations

import numpy as np

from ..registry import LAYERS
from .activations import sigmoid
from .layer import Example, Layer, ShapeError

INITIAL_STATES = ("zero", "learned")


def check_positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class Recurrent(Layer):
    """What the RNN and the LSTM share: options, weights, initial states, the stacked
    weight gradients and the cost. ``gates`` is the number of H-wide blocks in ``Wx``,
    ``Wh`` and ``b``; ``states`` names the initial states learned with
    ``initial_state="learned"``."""

    gates = 1
    states: tuple[str, ...] = ("h0",)

    def __init__(self, hidden: int, return_sequences: bool = True,
                 initial_state: str = "zero", init=None):
        super().__init__()
        self.hidden = check_positive_int("hidden", hidden)
        if not isinstance(return_sequences, bool):
            raise ValueError(f"return_sequences must be true or false, got {return_sequences!r}")
        if initial_state not in INITIAL_STATES:
            raise ValueError(f"initial_state must be one of {', '.join(INITIAL_STATES)}, "
                             f"got {initial_state!r}")
        self.return_sequences = return_sequences
        self.initial_state = initial_state
        self.init = init
        self.decay = {"Wx", "Wh"}

    def build(self, in_shape, rng):
        if len(in_shape) != 2:
            raise ShapeError(f"{self.registered_name} needs sequences (T, D), got "
                             f"{len(in_shape)} axes {tuple(in_shape)}")
        steps, features = in_shape
        width = self.gates * self.hidden
        self.params = {
            "Wx": self.new_weight((features, width), rng, self.init),
            "Wh": self.new_weight((self.hidden, width), rng, self.init),
            "b": self.initial_bias(),
        }
        if self.initial_state == "learned":
            for name in self.states:
                self.params[name] = self.new_zeros((self.hidden,))
        return (steps, self.hidden) if self.return_sequences else (self.hidden,)

    def initial_bias(self) -> np.ndarray:
        return self.new_zeros((self.gates * self.hidden,))

    def initial(self, name: str, n: int, dtype) -> np.ndarray:
        """The ``(N, H)`` state before the first step: zeros or the learned vector."""
        if self.initial_state == "learned":
            return np.broadcast_to(self.params[name].astype(dtype, copy=False), (n, self.hidden))
        return np.zeros((n, self.hidden), dtype)

    def project(self, x: np.ndarray) -> np.ndarray:
        """``x_t Wx + b`` for every step at once: ``(N, T, D) → (N, T, G·H)``."""
        n, steps, features = x.shape
        xa = x.reshape(n * steps, features) @ self.params["Wx"] + self.params["b"]
        return xa.reshape(n, steps, -1)

    def output(self, out: np.ndarray) -> np.ndarray:
        return out if self.return_sequences else out[:, -1]

    def step_gradients(self, dout: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
        """The loss gradient arriving at each step's state from above, ``(N, T, H)``:
        ``dout`` itself, or zeros but for the last step without ``return_sequences``."""
        if self.return_sequences:
            return dout
        dhs = np.zeros(out_shape, dout.dtype)
        dhs[:, -1] = dout
        return dhs

    def assign_grads(self, x: np.ndarray, prev_h: np.ndarray, da: np.ndarray,
                     initial_grads: dict[str, np.ndarray]) -> np.ndarray:
        """Sum every step's weight gradients with one product each; return ``dx``.

        ``prev_h`` stacks ``h_{t−1}`` for every step ``(N, T, H)``; ``da`` the
        pre-activation gradients ``(N, T, G·H)``; ``initial_grads`` the ``(N, H)``
        gradients of the initial states, summed over the batch when they are learned.
        """
        n, steps, features = x.shape
        da2 = da.reshape(n * steps, -1)
        self.grads = {
            "Wx": x.reshape(n * steps, features).T @ da2,
            "Wh": prev_h.reshape(n * steps, self.hidden).T @ da2,
            "b": da2.sum(axis=0),
        }
        if self.initial_state == "learned":
            for name in self.states:
                self.grads[name] = initial_grads[name].sum(axis=0)
        return (da2 @ self.params["Wx"].T).reshape(n, steps, features)

    def macs(self, in_shape, out_shape):
        steps, features = in_shape
        return steps * (features + self.hidden) * self.gates * self.hidden


@LAYERS.register("rnn")
class RNN(Recurrent):
    """Vanilla (Elman) RNN: ``h_t = tanh(x_t Wx + h_{t−1} Wh + b)``.

    Shapes: x ``(N, T, D)``; Wx ``(D, H)``; Wh ``(H, H)``; b ``(H,)``; h0 ``(H,)`` with
    ``initial_state="learned"`` (else h_0 = 0); out ``(N, T, H)`` (every h_t) with
    ``return_sequences``, else ``(N, H)`` (the last state h_T).

    Backward, step t from T down to 1, with ``dh_t`` = the gradient from above at step t
    plus the one coming back from step t+1 (zero at t = T):

        da_t     = dh_t ⊙ (1 − h_t²)
        dh_{t−1} = da_t Whᵀ

    and BPTT sums over steps ``dWx = Σ_t x_tᵀ da_t``, ``dWh = Σ_t h_{t−1}ᵀ da_t``,
    ``db = Σ_t Σ_N da_t``, with ``dx_t = da_t Wxᵀ``; a learned h0 gets ``Σ_N dh_0``.
    Parameters ``(D + H + 1)·H`` (+ H for h0); multiply-adds ``T·(D + H)·H`` per sample.
    """

    examples = (
        Example({"type": "rnn", "hidden": 4}, (3, 2)),
        Example({"type": "rnn", "hidden": 3, "return_sequences": False,
                 "initial_state": "learned"}, (4, 3)),
        Example({"type": "rnn", "hidden": 2, "initial_state": "learned"}, (5, 3)),
    )

    def forward(self, x, train=True):
        n, steps, _ = x.shape
        Wh = self.params["Wh"]
        xa = self.project(x)
        out = np.empty((n, steps, self.hidden), xa.dtype)
        h0 = self.initial("h0", n, xa.dtype)
        h = h0
        for t in range(steps):
            h = np.tanh(xa[:, t] + h @ Wh)
            out[:, t] = h
        prev_h = np.concatenate([h0[:, None], out[:, :-1]], axis=1)
        self.cache = (x, prev_h, out)
        return self.output(out)

    def backward(self, dout):
        x, prev_h, out = self.cache
        Wh = self.params["Wh"]
        dhs = self.step_gradients(dout, out.shape)
        da = np.empty_like(out)
        dh = np.zeros_like(out[:, 0])
        for t in reversed(range(out.shape[1])):
            h = out[:, t]
            da[:, t] = (dhs[:, t] + dh) * (1 - h * h)
            dh = da[:, t] @ Wh.T
        return self.assign_grads(x, prev_h, da, {"h0": dh})


@LAYERS.register("lstm")
class LSTM(Recurrent):
    """Long short-term memory, gates in the order input, forget, output, block input.

    Per step, with ``a = x_t Wx + h_{t−1} Wh + b`` of shape ``(N, 4H)``:

        i = σ(a[:, :H])   f = σ(a[:, H:2H])   o = σ(a[:, 2H:3H])   g = tanh(a[:, 3H:])
        c_t = f ⊙ c_{t−1} + i ⊙ g
        h_t = o ⊙ tanh(c_t)

    Shapes: x ``(N, T, D)``; Wx ``(D, 4H)``; Wh ``(H, 4H)``; b ``(4H,)``; h0, c0 ``(H,)``
    with ``initial_state="learned"`` (else both start at 0); out ``(N, T, H)`` (every
    h_t) with ``return_sequences``, else ``(N, H)`` (the last h_T).

    Backward, step t from T down to 1, with ``dh_t`` = the gradient from above plus the
    one from step t+1, and ``dc_t`` = the one from step t+1 (both zero at t = T):

        dc_t += dh_t ⊙ o ⊙ (1 − tanh²(c_t))
        da_i = dc_t ⊙ g ⊙ i(1 − i)            da_f = dc_t ⊙ c_{t−1} ⊙ f(1 − f)
        da_o = dh_t ⊙ tanh(c_t) ⊙ o(1 − o)    da_g = dc_t ⊙ i ⊙ (1 − g²)
        dc_{t−1} = dc_t ⊙ f                   dh_{t−1} = da Whᵀ

    then BPTT's sums as for the RNN: ``dWx = Σ_t x_tᵀ da_t``, ``dWh = Σ_t h_{t−1}ᵀ da_t``,
    ``db = Σ_t Σ_N da_t``, ``dx_t = da_t Wxᵀ``; learned h0, c0 get ``Σ_N dh_0``, ``Σ_N dc_0``.
    The additive path ``dc_{t−1} = dc_t ⊙ f`` is why LSTMs suffer less from vanishing
    gradients than the RNN, whose gradient is multiplied by ``Wh`` and ``tanh'`` every step.

    The forget-gate bias starts at 1 (the others at 0): with ``f = σ(1) ≈ 0.73`` instead
    of 0.5, a fresh cell keeps most of its content from step to step, so gradients reach
    early steps before the gates have learned anything (Gers et al., 2000; Jozefowicz
    et al., 2015).
    Parameters ``4(D + H + 1)·H`` (+ 2H for h0, c0); multiply-adds ``4T·(D + H)·H``.
    """

    gates = 4
    states = ("h0", "c0")
    forget_bias = 1.0

    examples = (
        Example({"type": "lstm", "hidden": 3}, (3, 2)),
        Example({"type": "lstm", "hidden": 2, "return_sequences": False,
                 "initial_state": "learned"}, (4, 3)),
        Example({"type": "lstm", "hidden": 3, "initial_state": "learned"}, (3, 4)),
    )

    def initial_bias(self):
        b = self.new_zeros((4 * self.hidden,))
        b[self.hidden:2 * self.hidden] = self.forget_bias
        return b

    def forward(self, x, train=True):
        n, steps, _ = x.shape
        H = self.hidden
        Wh = self.params["Wh"]
        xa = self.project(x)
        gates = np.empty_like(xa)  # σ(i), σ(f), σ(o), tanh(g) of every step
        cells = np.empty((n, steps, H), xa.dtype)
        tanh_cells = np.empty_like(cells)
        out = np.empty_like(cells)
        h0, c0 = self.initial("h0", n, xa.dtype), self.initial("c0", n, xa.dtype)
        h, c = h0, c0
        for t in range(steps):
            a = xa[:, t] + h @ Wh
            gate = gates[:, t]
            gate[:, :3 * H] = sigmoid(a[:, :3 * H])
            gate[:, 3 * H:] = np.tanh(a[:, 3 * H:])
            i, f, o, g = np.split(gate, 4, axis=1)
            c = f * c + i * g
            cells[:, t] = c
            tanh_cells[:, t] = np.tanh(c)
            h = o * tanh_cells[:, t]
            out[:, t] = h
        prev_h = np.concatenate([h0[:, None], out[:, :-1]], axis=1)
        prev_c = np.concatenate([c0[:, None], cells[:, :-1]], axis=1)
        self.cache = (x, prev_h, prev_c, gates, tanh_cells)
        return self.output(out)

    def backward(self, dout):
        x, prev_h, prev_c, gates, tanh_cells = self.cache
        H = self.hidden
        Wh = self.params["Wh"]
        dhs = self.step_gradients(dout, prev_h.shape)
        da = np.empty_like(gates)
        dh = np.zeros_like(prev_h[:, 0])
        dc = np.zeros_like(dh)
        for t in reversed(range(gates.shape[1])):
            i, f, o, g = np.split(gates[:, t], 4, axis=1)
            tanh_c = tanh_cells[:, t]
            dh = dhs[:, t] + dh
            dc = dc + dh * o * (1 - tanh_c * tanh_c)
            step = da[:, t]
            step[:, :H] = dc * g * i * (1 - i)
            step[:, H:2 * H] = dc * prev_c[:, t] * f * (1 - f)
            step[:, 2 * H:3 * H] = dh * tanh_c * o * (1 - o)
            step[:, 3 * H:] = dc * i * (1 - g * g)
            dc = dc * f
            dh = step @ Wh.T
        return self.assign_grads(x, prev_h, da, {"h0": dh, "c0": dc})
