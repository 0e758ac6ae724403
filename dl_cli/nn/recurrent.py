"""Recurrent layers over sequences ``(N, T, D)``: the vanilla RNN and the LSTM.

Both follow one plan, so the time loop is the only Python loop:

- the steps are laid out time-major inside the layer, ``(T, N, ·)``, so that each
  step's slab of every array is one contiguous block;
- forward: the input projection of every step, ``x Wx + b``, is one product
  ``(T·N, D) @ Wx`` before the loop; each step adds one product ``h_{t−1} @ Wh`` and
  applies the nonlinearities to the whole ``(N, G·H)`` block at once (G = 1 for the RNN,
  4 for the LSTM's gates), writing into arrays allocated once per call;
- backward (backpropagation through time): every factor of the local derivatives that
  does not depend on the gradient is computed for all steps at once before the loop;
  the loop runs from the last step to the first and stores each step's pre-activation
  gradient ``da_t`` in one ``(T, N, G·H)`` array. BPTT sums each step's weight
  gradients, ``dWx = Σ_t x_tᵀ da_t`` and ``dWh = Σ_t h_{t−1}ᵀ da_t``; with the steps
  stacked into ``T·N`` rows each sum is one product, and so is ``dx = da Wxᵀ``.
  The loop's product ``da_t Whᵀ`` reads a contiguous copy of ``Whᵀ``, made once per
  call: OpenBLAS's SkylakeX kernels take a transposed right factor of this size at
  1.5 times the time (``benchmarks/README.md``).

``initial_state="learned"`` adds parameters for the state before the first step (``h0``,
and ``c0`` for the LSTM), shared by every sequence of the batch: its gradient is the sum
over the batch of the gradient that reaches step 0.
"""

from __future__ import annotations

import numpy as np

from ..checks import check_bool, check_choice, positive_int
from ..registry import LAYERS
from .layer import Example, Layer, ShapeError

INITIAL_STATES = ("zero", "learned")


class Recurrent(Layer):
    """What the RNN and the LSTM share: options, weights, initial states, the stacked
    weight gradients and the cost. ``gates`` is the number of H-wide blocks in ``Wx``,
    ``Wh`` and ``b``; ``states`` names the initial states learned with
    ``initial_state="learned"``.

    ``input_grad = False`` (set by a model whose first layer this is: its input is the
    data) skips the input gradient; ``backward`` then returns None.
    """

    gates = 1
    states: tuple[str, ...] = ("h0",)
    input_grad = True

    def __init__(self, hidden: int, return_sequences: bool = True,
                 initial_state: str = "zero", init=None):
        super().__init__()
        self.hidden = positive_int("hidden", hidden)
        self.return_sequences = check_bool("return_sequences", return_sequences)
        self.initial_state = check_choice("initial_state", initial_state, INITIAL_STATES)
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

    def state_slots(self, name: str, steps: int, n: int, dtype) -> np.ndarray:
        """``(T + 1, N, H)`` for a state at every step, slot 0 holding the state before
        the first step: zeros or the learned vector."""
        slots = np.empty((steps + 1, n, self.hidden), dtype)
        slots[0] = self.params[name] if self.initial_state == "learned" else 0
        return slots

    def project(self, x: np.ndarray, scale: np.ndarray | None = None):
        """``x_t Wx + b`` for every step at once, time-major ``(T, N, G·H)``, each column
        multiplied by ``scale`` when given (folded into ``Wx`` and ``b``); and the inputs
        as ``(T·N, D)`` rows."""
        n, steps, features = x.shape
        x_rows = x.transpose(1, 0, 2).reshape(steps * n, features)  # one copy
        Wx, b = self.params["Wx"], self.params["b"]
        if scale is not None:
            Wx, b = Wx * scale, b * scale
        xa = x_rows @ Wx
        xa += b
        return xa.reshape(steps, n, -1), x_rows

    def output(self, hs: np.ndarray) -> np.ndarray:
        """Every ``h_t`` as ``(N, T, H)``, or the last ``(N, H)``, from the slots
        ``(T + 1, N, H)``."""
        if self.return_sequences:
            return np.ascontiguousarray(hs[1:].transpose(1, 0, 2))
        return hs[-1]

    def add_gradient_from_above(self, dh: np.ndarray, dout: np.ndarray, t: int,
                                steps: int) -> None:
        """Add to ``dh`` (in place) the loss gradient reaching ``h_t`` directly:
        ``dout[:, t]`` for sequences, else ``dout`` at the last step only."""
        if self.return_sequences:
            dh += dout[:, t]
        elif t == steps - 1:
            dh += dout

    def assign_grads(self, x_rows: np.ndarray, prev_h: np.ndarray, da: np.ndarray,
                     initial_grads: dict[str, np.ndarray]) -> np.ndarray | None:
        """Sum every step's weight gradients with one product each; return ``dx``.

        ``x_rows`` are the inputs ``(T·N, D)``; ``prev_h`` stacks ``h_{t−1}`` for every
        step ``(T, N, H)``; ``da`` the pre-activation gradients ``(T, N, G·H)``;
        ``initial_grads`` the ``(N, H)`` gradients of the initial states, summed over
        the batch when they are learned.
        """
        steps, n, width = da.shape
        da2 = da.reshape(steps * n, width)
        self.grads = {
            "Wx": x_rows.T @ da2,
            "Wh": prev_h.reshape(steps * n, self.hidden).T @ da2,
            "b": da2.sum(axis=0),
        }
        if self.initial_state == "learned":
            for name in self.states:
                self.grads[name] = initial_grads[name].sum(axis=0)
        if not self.input_grad:
            return None
        dx = (da2 @ self.params["Wx"].T).reshape(steps, n, -1)
        return np.ascontiguousarray(dx.transpose(1, 0, 2))

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
    Reference: ``reference.rnn_forward``, one sample and one step at a time.
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
        acts, x_rows = self.project(x)
        hs = self.state_slots("h0", steps, n, acts.dtype)
        product = np.empty_like(hs[0])
        for t in range(steps):
            np.matmul(hs[t], Wh, out=product)
            product += acts[t]
            np.tanh(product, out=hs[t + 1])
        self.cache = (x_rows, hs)
        return self.output(hs)

    def backward(self, dout):
        x_rows, hs = self.cache
        Wh_T = np.ascontiguousarray(self.params["Wh"].T)  # read every step: see the module doc
        steps = len(hs) - 1
        da = hs[1:] * hs[1:]
        np.subtract(1, da, out=da)  # tanh' = 1 − h_t² of every step; times dh_t in the loop
        dh = np.zeros_like(hs[0])
        for t in reversed(range(steps)):
            self.add_gradient_from_above(dh, dout, t, steps)
            da[t] *= dh
            if t > 0 or self.initial_state == "learned":  # a zero h_0 needs no gradient
                dh = da[t] @ Wh_T
        return self.assign_grads(x_rows, hs[:-1], da, {"h0": dh})


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

    Computed with one ``tanh`` per step for all four gates: the pre-activations of i, f
    and o are halved through ``Wx``, ``Wh`` and ``b`` once per call (``gate_scale``), so
    one ``tanh`` of the ``(N, 4H)`` block gives g and ``tanh(a/2)`` for the others, and
    ``σ(a) = (1 + tanh(a/2))/2`` (NumPy's float32 ``tanh`` costs half of ``1/(1 + e^−a)``,
    an exponential, an addition and a reciprocal).
    Parameters ``4(D + H + 1)·H`` (+ 2H for h0, c0); multiply-adds ``4T·(D + H)·H``.
    Reference: ``reference.lstm_forward``, one sample and one step at a time, the gates
    by their definitions.
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

    def gate_scale(self, dtype) -> np.ndarray:
        """½ on the columns of i, f, o and 1 on those of g: pre-activations times this give
        every gate through one ``tanh``, with ``σ(a) = (1 + tanh(a/2))/2``. The addition
        costs relative precision where σ is tiny: i, f and o are then exact to about one
        unit in the last place of 1 (6e-8 in float32), not of the gate."""
        H = self.hidden
        return np.repeat(np.array([0.5, 0.5, 0.5, 1], dtype), H)

    def forward(self, x, train=True):
        n, steps, _ = x.shape
        H = self.hidden
        scale = self.gate_scale(x.dtype)
        gates, x_rows = self.project(x, scale)  # (T, N, 4H): scaled pre-activations, then gates
        Wh = self.params["Wh"] * scale
        hs = self.state_slots("h0", steps, n, gates.dtype)
        cs = self.state_slots("c0", steps, n, gates.dtype)
        tanh_cs = np.empty((steps, n, H), gates.dtype)
        product = np.empty((n, 4 * H), gates.dtype)
        block = np.empty((n, H), gates.dtype)
        for t in range(steps):
            gate = gates[t]
            np.matmul(hs[t], Wh, out=product)
            gate += product
            np.tanh(gate, out=gate)  # tanh(a/2) in the places of i, f, o; g
            sigmoids = gate[:, :3 * H]
            sigmoids *= 0.5
            sigmoids += 0.5
            i, f, o, g = gate[:, :H], gate[:, H:2 * H], gate[:, 2 * H:3 * H], gate[:, 3 * H:]
            np.multiply(f, cs[t], out=cs[t + 1])
            np.multiply(i, g, out=block)
            cs[t + 1] += block
            np.tanh(cs[t + 1], out=tanh_cs[t])
            np.multiply(o, tanh_cs[t], out=hs[t + 1])
        self.cache = (x_rows, hs, cs, gates, tanh_cs)
        return self.output(hs)

    def backward(self, dout):
        x_rows, hs, cs, gates, tanh_cs = self.cache
        steps, n, width = gates.shape
        Wh_T = np.ascontiguousarray(self.params["Wh"].T)  # read every step: see the module doc
        by_gate = gates.reshape(steps, n, 4, self.hidden)
        i, f, o, g = (by_gate[:, :, k] for k in range(4))
        # Every factor of da that does not depend on the gradient, for all steps at once:
        # da = [dc ⊙ g ⊙ i(1−i), dc ⊙ c_{t−1} ⊙ f(1−f), dh ⊙ tanh(c_t) ⊙ o(1−o), dc ⊙ i ⊙ (1−g²)]
        da = np.empty_like(gates)
        local = da.reshape(steps, n, 4, self.hidden)
        sigmoids = by_gate[:, :, :3]
        np.subtract(1, sigmoids, out=local[:, :, :3])
        local[:, :, :3] *= sigmoids
        local[:, :, 0] *= g
        local[:, :, 1] *= cs[:-1]
        local[:, :, 2] *= tanh_cs
        np.multiply(g, g, out=local[:, :, 3])
        np.subtract(1, local[:, :, 3], out=local[:, :, 3])
        local[:, :, 3] *= i
        via_h = tanh_cs * tanh_cs  # dc_t gets dh_t ⊙ o ⊙ (1 − tanh²(c_t))
        np.subtract(1, via_h, out=via_h)
        via_h *= o
        dh = np.zeros_like(hs[0])
        dc = np.zeros_like(dh)
        block = np.empty_like(dh)
        for t in reversed(range(steps)):
            self.add_gradient_from_above(dh, dout, t, steps)
            np.multiply(dh, via_h[t], out=block)
            dc += block
            step = local[t]
            step[:, :2] *= dc[:, None]
            step[:, 2] *= dh
            step[:, 3] *= dc
            dc *= f[t]
            if t > 0 or self.initial_state == "learned":  # zero initial states need no gradient
                dh = da[t] @ Wh_T
        return self.assign_grads(x_rows, hs[:-1], da, {"h0": dh, "c0": dc})
