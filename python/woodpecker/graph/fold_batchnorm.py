"""`wpk-fold-batchnorm`: inference batch_norm into its producer, else a per-channel scale and shift.

With constant parameters, `batch_norm(x)` is `x * s + t` per channel (dimension
1) with `s = scale / sqrt(variance + epsilon)` and `t = bias - mean * s`
(computed in float64). When `x` is used only by the batch_norm and is produced
by

* `wpk.conv2d` with a constant filter (and bias): the filter rows are scaled by
  `s` and the bias becomes `bias * s + t`;
* `wpk.gemm` with a constant `b` (and `c`): the columns of `op(b)` are scaled by
  `s` and `c` becomes `beta * c * s + t` (beta becomes 1);
* a 2-D `wpk.matmul` with a constant right operand: it becomes a `wpk.gemm`
  with the scaled operand and `c = t`;

the producer absorbs the normalization. Any other batch_norm with constant
parameters becomes `wpk.elementwise(x, s, t) {steps = ["mul", "add"]}` with `s`
and `t` shaped [C, 1, ...] to broadcast along dimension 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mlir import ir
from mlir.rewrite import PatternRewriter

from woodpecker.dialect import attr_bool, attr_float, bool_attr, create_op, f32_attr
from woodpecker.graph.context import GraphContext
from woodpecker.graph.rewrite import (
    NO_MATCH,
    MatchAndRewrite,
    Pattern,
    apply_patterns,
    erase_dead_ops,
    fused_location,
    location_name,
    producer,
    shape,
    used_only_by,
)
from woodpecker.ops.fused_layout import build
from woodpecker.ops.steps import Step

PASS_NAME = "wpk-fold-batchnorm"


@dataclass(frozen=True)
class Affine:
    """batch_norm as y = x * scale + shift per channel (float64)."""

    scale: np.ndarray
    shift: np.ndarray


def batch_norm_affine(graph: GraphContext, bn: ir.Operation) -> Affine | None:
    """The scale and shift of a batch_norm whose parameters are constants, else None."""
    params = [graph.array_of(bn.operands[i]) for i in range(1, 5)]
    if any(p is None for p in params):
        return None
    gamma, beta, mean, var = (np.asarray(p, dtype=np.float64) for p in params)
    scale = gamma / np.sqrt(var + attr_float(bn, "epsilon"))
    return Affine(scale, beta - mean * scale)


@dataclass
class Folder:
    """Rewrites one batch_norm (the pattern body's state)."""

    graph: GraphContext
    rewriter: PatternRewriter
    bn: ir.Operation
    affine: Affine

    def weight(self, array: np.ndarray, what: str) -> ir.Value:
        return self.graph.constant(array, f"{location_name(self.bn)}_{what}", self.bn.location)

    def replace(self, new_op: ir.Operation, old_producer: ir.Operation | None) -> None:
        self.rewriter.replace_op(self.bn, new_op)
        if old_producer is not None:
            self.rewriter.erase_op(old_producer)

    def into_conv(self, conv: ir.Operation) -> bool:
        w = self.graph.array_of(conv.operands[1])
        has_bias = len(conv.operands) > 2
        b = self.graph.array_of(conv.operands[2]) if has_bias else np.zeros(shape(conv.results[0])[1])
        if w is None or b is None:
            return False
        s, t = self.affine.scale, self.affine.shift
        with self.rewriter.ip:
            filt = self.weight(w * s[:, None, None, None], "filter")
            bias = self.weight(b * s + t, "bias")
            attrs = {name: attr for name, attr in conv.attributes.items()}
            new = create_op("conv2d", [conv.operands[0], filt, bias], [self.bn.results[0].type], attrs,
                            fused_location(conv, self.bn))
        self.replace(new, conv)
        return True

    def into_gemm(self, gemm: ir.Operation) -> bool:
        b = self.graph.array_of(gemm.operands[1])
        has_c = len(gemm.operands) > 2
        c = self.graph.array_of(gemm.operands[2]) if has_c else np.zeros(())
        if b is None or c is None:
            return False
        s, t = self.affine.scale, self.affine.shift
        scaled_b = b * s[:, None] if attr_bool(gemm, "trans_b") else b * s[None, :]
        c_term = attr_float(gemm, "beta") * np.asarray(c, dtype=np.float64) if has_c else np.zeros(())
        new_c = c_term * s + t
        with self.rewriter.ip:
            attrs = {name: attr for name, attr in gemm.attributes.items()}
            attrs["beta"] = f32_attr(1.0)
            operands = [gemm.operands[0], self.weight(scaled_b, "b"), self.weight(new_c, "c")]
            new = create_op("gemm", operands, [self.bn.results[0].type], attrs, fused_location(gemm, self.bn))
        self.replace(new, gemm)
        return True

    def into_matmul(self, matmul: ir.Operation) -> bool:
        lhs, rhs = matmul.operands[0], matmul.operands[1]
        w = self.graph.array_of(rhs)
        if w is None or len(shape(lhs)) != 2 or len(shape(rhs)) != 2:
            return False
        with self.rewriter.ip:
            attrs = {
                "alpha": f32_attr(1.0),
                "beta": f32_attr(1.0),
                "trans_a": bool_attr(False),
                "trans_b": bool_attr(False),
            }
            operands = [lhs, self.weight(w * self.affine.scale[None, :], "b"), self.weight(self.affine.shift, "c")]
            new = create_op("gemm", operands, [self.bn.results[0].type], attrs, fused_location(matmul, self.bn))
        self.replace(new, matmul)
        return True

    def into_scale_shift(self) -> None:
        x = self.bn.operands[0]
        channel = [-1] + [1] * (len(shape(x)) - 2)
        with self.rewriter.ip:
            scale = self.weight(self.affine.scale.reshape(channel), "scale")
            shift = self.weight(self.affine.shift.reshape(channel), "shift")
            new = build(
                "wpk.elementwise",
                {"input": x},
                [scale, shift],
                [Step("mul"), Step("add")],
                self.bn.results[0].type,
                loc=self.bn.location,
            )
        self.replace(new, None)


_PRODUCERS = {"wpk.conv2d": Folder.into_conv, "wpk.gemm": Folder.into_gemm, "wpk.matmul": Folder.into_matmul}


def fold_pattern(graph: GraphContext) -> MatchAndRewrite:
    def fold(bn: ir.Operation, rewriter: PatternRewriter) -> bool | None:
        affine = batch_norm_affine(graph, bn)
        if affine is None:
            return NO_MATCH
        folder = Folder(graph, rewriter, bn, affine)
        x = bn.operands[0]
        source = producer(x)
        foldable = source is not None and source.name in _PRODUCERS and used_only_by(x, bn)
        if not (foldable and _PRODUCERS[source.name](folder, source)):
            folder.into_scale_shift()
        return None

    return fold


def patterns(graph: GraphContext) -> list[Pattern]:
    return [Pattern("wpk.batch_norm", fold_pattern(graph))]


def fold_batchnorm(root: ir.Operation, graph: GraphContext) -> None:
    """The pass: rewrites every batch_norm with constant parameters, then erases dead weights."""
    apply_patterns(root, patterns(graph))
    erase_dead_ops(root)
