"""LSTM and GRU, unrolled at import over the static sequence length into existing ops.

Forward, reverse and bidirectional; the default activations; layout 0 and 1 (batch first, by
transposes); no sequence_lens;
optional initial_h (and initial_c); W, R and B must be constants: they are split per gate and
transposed here. Per direction and gate, one matmul computes x_t W^T + b for every time step
([T * B, I] x [I, H]); the rows of step t are taken by a product with a constant 0/1 selection
matrix ([B, T * B]; there is no slice op), so a step is that product, h R^T (absent at the first
step without initial_h), sigmoid/tanh and the elementwise gate arithmetic. Y is the concat of
the steps' h, Y_h / Y_c the last step's state of each direction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from mlir import ir

from woodpecker.dialect import wpk
from woodpecker.importer.converters.registry import Result, converts
from woodpecker.importer.node import NodeContext
from woodpecker.importer.values import materialize, sanitize_resource_name

LSTM_GATES = ("i", "o", "f", "c")
GRU_GATES = ("z", "r", "h")
DEFAULT_ACTIVATIONS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh")}


@dataclass
class Recurrence:
    """One node's shapes and the builders shared by LSTM and GRU."""

    ctx: NodeContext
    steps: int  # T
    batch: int  # B
    hidden: int  # H
    directions: int
    x_rows: ir.Value  # X as [T * B, I]
    batch_first: bool = False  # layout 1: X [B, T, I], Y [B, T, D, H], states [B, D, H]
    counter: int = 0

    def const(self, array: np.ndarray, what: str) -> ir.Value:
        self.counter += 1
        name = sanitize_resource_name(f"{self.ctx.name}_{what}_{self.counter}")
        return materialize(np.asarray(array, dtype=np.float32), name, self.ctx.values.weights, self.ctx.loc)

    def emit(self, op: wpk.OpClass, shape: Sequence[int], *operands: ir.Value, **attrs: object) -> ir.Value:
        return self.ctx.emit(op, shape, *operands, **attrs)

    def bh(self) -> list[int]:
        return [self.batch, self.hidden]

    def matmul(self, a: ir.Value, b: ir.Value, shape: Sequence[int]) -> ir.Value:
        return self.emit(wpk.MatMulOp, shape, a, b)

    def add(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.emit(wpk.AddOp, self.bh(), a, b)

    def mul(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.emit(wpk.MulOp, self.bh(), a, b)

    def sub(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.emit(wpk.SubOp, self.bh(), a, b)

    def sigmoid(self, a: ir.Value) -> ir.Value:
        return self.emit(wpk.SigmoidOp, self.bh(), a)

    def tanh(self, a: ir.Value) -> ir.Value:
        return self.emit(wpk.TanhOp, self.bh(), a)

    def input_terms(self, w: np.ndarray, bias: np.ndarray) -> InputTerms:
        """x_t W^T + bias for the steps t (W: [H, I] of one gate), built on first use."""
        return InputTerms(self, w, bias)

    def initial(self, index: int, direction: int) -> ir.Value | None:
        """initial_h / initial_c ([directions, B, H]) of `direction`, None when absent."""
        ctx = self.ctx
        if not ctx.has_input(index):
            return None
        state = ctx.tensor(index)
        if self.batch_first:
            state = self.emit(wpk.TransposeOp, [self.directions, self.batch, self.hidden], state, [1, 0, 2])
        expected = [self.directions, self.batch, self.hidden]
        ctx.check(
            ctx.shape_of(state) == expected, f"input {index} has shape {ctx.shape_of(state)}, expected {expected}"
        )
        flat = self.emit(wpk.ReshapeOp, [self.directions, self.batch * self.hidden], state)
        if self.directions > 1:
            select = np.zeros((1, self.directions), dtype=np.float32)
            select[0, direction] = 1.0
            flat = self.matmul(self.const(select, "select"), flat, [1, self.batch * self.hidden])
        return self.emit(wpk.ReshapeOp, self.bh(), flat)

    def outputs(self, hs: list[list[ir.Value]], finals: list[list[ir.Value]]) -> list[Result]:
        """Y [T, D, B, H] from the steps' h (in time order) per direction, and the final states."""
        ctx = self.ctx
        d, t, b, h = self.directions, self.steps, self.batch, self.hidden
        results: list[Result] = []
        if ctx.output_used(0):
            per_direction = [self._concat([self.emit(wpk.ReshapeOp, [1, 1, b, h], v) for v in seq], 0) for seq in hs]
            y = self._concat(per_direction, 1)
            if self.batch_first:
                y = self.emit(wpk.TransposeOp, [b, t, d, h], y, [2, 0, 1, 3])
            results.append(self._checked(0, y, self.ctx.shape_of(y)))
        else:
            results.append(None)
        for index, states in enumerate(finals, start=1):
            if index < len(ctx.node.output) and ctx.output_used(index):
                stacked = self._concat([self.emit(wpk.ReshapeOp, [1, b, h], v) for v in states], 0)
                if self.batch_first:
                    stacked = self.emit(wpk.TransposeOp, [b, d, h], stacked, [1, 0, 2])
                results.append(self._checked(index, stacked, self.ctx.shape_of(stacked)))
            else:
                results.append(None)
        return results[: len(ctx.node.output)]

    def _concat(self, values: list[ir.Value], axis: int) -> ir.Value:
        result = values[0]
        for value in values[1:]:
            shape = self.ctx.shape_of(result)
            shape[axis] += self.ctx.shape_of(value)[axis]
            result = self.emit(wpk.ConcatOp, shape, result, value, axis)
        return result

    def _checked(self, index: int, value: ir.Value, shape: list[int]) -> ir.Value:
        self.ctx.output_shape(index, lambda: shape)
        return value


@dataclass
class InputTerms:
    """x_t W^T + bias of one gate: one matmul over all steps ([T * B, I] x [I, H]) and, per step,
    the product with a 0/1 selection matrix that takes its rows. Built on first use, so that a
    term a step does not need (the forget gate without a previous cell) leaves no dead op."""

    rec: Recurrence
    w: np.ndarray
    bias: np.ndarray
    _all_steps: ir.Value | None = None

    def at(self, t: int) -> ir.Value:
        rec = self.rec
        rows = rec.steps * rec.batch
        if self._all_steps is None:
            product = rec.matmul(rec.x_rows, rec.const(self.w.T, "w"), [rows, rec.hidden])
            self._all_steps = rec.emit(wpk.AddOp, [rows, rec.hidden], product, rec.const(self.bias, "b"))
        select = np.zeros((rec.batch, rows), dtype=np.float32)
        select[np.arange(rec.batch), t * rec.batch + np.arange(rec.batch)] = 1.0
        return rec.matmul(rec.const(select, "select"), self._all_steps, rec.bh())


def _weights(ctx: NodeContext, gates: int, hidden: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """W [D, G * H, I], R [D, G * H, H] and B [D, 2 * G * H] (zeros when absent), and D."""
    w = np.asarray(ctx.constant(1, "W"), dtype=np.float64)
    r = np.asarray(ctx.constant(2, "R"), dtype=np.float64)
    directions = w.shape[0]
    ctx.check(
        w.ndim == 3 and w.shape[1] == gates * hidden, f"W has shape {list(w.shape)}, expected [D, {gates * hidden}, I]"
    )
    ctx.check(r.shape == (directions, gates * hidden, hidden), f"R has shape {list(r.shape)}")
    if ctx.has_input(3):
        b = np.asarray(ctx.constant(3, "B"), dtype=np.float64)
        ctx.check(b.shape == (directions, 2 * gates * hidden), f"B has shape {list(b.shape)}")
    else:
        b = np.zeros((directions, 2 * gates * hidden))
    return w, r, b, directions


def _setup(ctx: NodeContext, gates: int) -> tuple[Recurrence, np.ndarray, np.ndarray, np.ndarray, list[int]]:
    op = ctx.op_type
    layout = int(ctx.attr("layout", 0))
    ctx.check(layout in (0, 1), f"layout must be 0 or 1, got {layout}")
    if ctx.has_input(4):
        raise ctx.unsupported("sequence_lens is not supported (every sequence has the full length)")
    if ctx.attr("clip") is not None:
        raise ctx.unsupported("attribute 'clip' is not supported")
    activations = ctx.attr("activations")
    if activations is not None:
        names = tuple(a.decode() if isinstance(a, bytes) else str(a) for a in activations)
        defaults = DEFAULT_ACTIVATIONS[op]
        if names not in (defaults, defaults * 2):
            raise ctx.unsupported(f"activations {list(names)} are not supported (only the defaults {list(defaults)})")
    direction = ctx.attr("direction", "forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ctx.unsupported(f"direction '{direction}' is not one of forward, reverse, bidirectional")
    hidden = int(ctx.attr("hidden_size", 0))
    ctx.check(hidden > 0, "attribute 'hidden_size' is required and must be positive")
    w, r, b, directions = _weights(ctx, gates, hidden)
    ctx.check(
        directions == (2 if direction == "bidirectional" else 1), f"W has {directions} directions for '{direction}'"
    )
    x_shape = ctx.input_shape(0)
    ctx.check(
        len(x_shape) == 3 and x_shape[2] == w.shape[2],
        f"X has shape {x_shape}, expected 3-D with {w.shape[2]} features",
    )
    x = ctx.tensor(0)
    if layout == 1:
        x_shape = [x_shape[1], x_shape[0], x_shape[2]]
        x = ctx.emit(wpk.TransposeOp, x_shape, x, [1, 0, 2])
    steps, batch, _ = x_shape
    x_rows = ctx.emit(wpk.ReshapeOp, [steps * batch, x_shape[2]], x)
    order = {"forward": [0], "reverse": [1], "bidirectional": [0, 1]}[direction]  # 1: reversed in time
    rec = Recurrence(ctx, steps, batch, hidden, directions, x_rows, batch_first=layout == 1)
    return rec, w, r, b, order


def _gate(array: np.ndarray, index: int, hidden: int) -> np.ndarray:
    return array[index * hidden : (index + 1) * hidden]


def _run(
    rec: Recurrence,
    order: list[int],
    step: Callable[[int, int, ir.Value | None, ir.Value | None], tuple[ir.Value, ir.Value | None]],
) -> tuple[list[list[ir.Value]], list[list[ir.Value]]]:
    """Runs `step(direction, t, h, c) -> (h, c)` over time per direction; (h per step in time
    order per direction, [final h per direction, final c per direction])."""
    hs: list[list[ir.Value]] = []
    final_h: list[ir.Value] = []
    final_c: list[ir.Value] = []
    for d, reverse in enumerate(order):
        h = rec.initial(5, d)
        c = rec.initial(6, d) if rec.ctx.op_type == "LSTM" else None
        times = range(rec.steps - 1, -1, -1) if reverse else range(rec.steps)
        seq: dict[int, ir.Value] = {}
        for t in times:
            h, c = step(d, t, h, c)
            seq[t] = h
        hs.append([seq[t] for t in range(rec.steps)])
        final_h.append(h)
        if c is not None:
            final_c.append(c)
    return hs, [final_h, final_c] if final_c else [final_h]


@converts("LSTM")
def convert_lstm(ctx: NodeContext) -> Sequence[Result]:
    rec, w, r, b, order = _setup(ctx, 4)
    if ctx.has_input(7):
        raise ctx.unsupported("peepholes (input P) are not supported")
    hidden = rec.hidden
    terms = []  # per direction: per gate, x_t W^T + Wb + Rb for every t
    recurrent = []  # per direction: per gate, R^T as a tensor
    for d in range(rec.directions):
        gates = range(len(LSTM_GATES))
        bias = [_gate(b[d, : 4 * hidden], g, hidden) + _gate(b[d, 4 * hidden :], g, hidden) for g in gates]
        terms.append([rec.input_terms(_gate(w[d], g, hidden), bias[g]) for g in gates])
        recurrent.append([rec.const(_gate(r[d], g, hidden).T, "r") for g in gates])

    def step(d: int, t: int, h: ir.Value | None, c: ir.Value | None) -> tuple[ir.Value, ir.Value | None]:
        def pre(g: int) -> ir.Value:
            value = terms[d][g].at(t)
            return value if h is None else rec.add(value, rec.matmul(h, recurrent[d][g], rec.bh()))

        i, o, cell = rec.sigmoid(pre(0)), rec.sigmoid(pre(1)), rec.tanh(pre(3))
        # Without a previous cell state (0) the forget gate is not needed.
        c_new = rec.mul(i, cell) if c is None else rec.add(rec.mul(rec.sigmoid(pre(2)), c), rec.mul(i, cell))
        return rec.mul(o, rec.tanh(c_new)), c_new

    hs, finals = _run(rec, order, step)
    return rec.outputs(hs, finals)


@converts("GRU")
def convert_gru(ctx: NodeContext) -> Sequence[Result]:
    rec, w, r, b, order = _setup(ctx, 3)
    hidden = rec.hidden
    before_reset = bool(int(ctx.attr("linear_before_reset", 0)))
    terms, recurrent, r_bias = [], [], []
    for d in range(rec.directions):
        wb, rb = b[d, : 3 * hidden], b[d, 3 * hidden :]
        # z and r take both biases in x's term; h's recurrent bias stays with h R^T.
        biases = [_gate(wb, 0, hidden) + _gate(rb, 0, hidden), _gate(wb, 1, hidden) + _gate(rb, 1, hidden)]
        biases.append(_gate(wb, 2, hidden))
        terms.append([rec.input_terms(_gate(w[d], g, hidden), biases[g]) for g in range(3)])
        recurrent.append([rec.const(_gate(r[d], g, hidden).T, "r") for g in range(3)])
        r_bias.append(rec.const(_gate(rb, 2, hidden), "rb"))

    def step(d: int, t: int, h: ir.Value | None, c: ir.Value | None) -> tuple[ir.Value, ir.Value | None]:
        def pre(g: int) -> ir.Value:
            value = terms[d][g].at(t)
            return value if h is None else rec.add(value, rec.matmul(h, recurrent[d][g], rec.bh()))

        z, x_h = rec.sigmoid(pre(0)), terms[d][2].at(t)
        if h is None:
            # h = 0: (r * h) R^T = 0 (r is not needed) and r * (h R^T + Rb) = r * Rb.
            hidden_term = rec.mul(rec.sigmoid(pre(1)), r_bias[d]) if before_reset else None
            candidate_pre = x_h if hidden_term is None else rec.add(x_h, hidden_term)
            if not before_reset:
                candidate_pre = rec.add(candidate_pre, r_bias[d])
            candidate = rec.tanh(candidate_pre)
            return rec.sub(candidate, rec.mul(z, candidate)), None
        gate_r = rec.sigmoid(pre(1))
        if before_reset:
            recurrent_h = rec.add(rec.matmul(h, recurrent[d][2], rec.bh()), r_bias[d])
            candidate_pre = rec.add(x_h, rec.mul(gate_r, recurrent_h))
        else:
            recurrent_h = rec.matmul(rec.mul(gate_r, h), recurrent[d][2], rec.bh())
            candidate_pre = rec.add(x_h, rec.add(recurrent_h, r_bias[d]))
        candidate = rec.tanh(candidate_pre)
        # (1 - z) * candidate + z * h = candidate + z * (h - candidate)
        return rec.add(candidate, rec.mul(z, rec.sub(h, candidate))), None

    hs, finals = _run(rec, order, step)
    return rec.outputs(hs, finals)
