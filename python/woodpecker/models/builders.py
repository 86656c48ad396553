"""Small test networks built with `onnx.helper`, with random but deterministic weights.

* `tiny_resnet`: a ResNet-style CNN (Conv/BatchNormalization/Relu/MaxPool, two residual basic
  blocks, AveragePool, GlobalAveragePool, Flatten, Gemm, Softmax); outputs `logits` and `probs`.
* `small_mlp`: a chain covering the remaining ops (MatMul, Add, Sub, Mul, Div, Relu, Gemm,
  Sigmoid, Tanh, LeakyRelu, Clip, Concat, Reshape, Transpose, Pad (constant and reflect),
  ReduceMean); outputs `features` and `mean`.

Both build valid models for opsets 11 to 18+ (operands that moved from attributes to inputs,
e.g. Clip min/max, Pad pads, ReduceMean axes, are written the way the opset wants).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIN_OPSET = 11


class _GraphBuilder:
    """Collects nodes and initializers; names every node `<op>_<n>`."""

    def __init__(self, opset: int, seed: int):
        if opset < MIN_OPSET:
            raise ValueError(f"opset {opset} is not supported by the builders (minimum {MIN_OPSET})")
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counts: dict[str, int] = {}

    def _name(self, prefix: str) -> str:
        n = self._counts.get(prefix, 0)
        self._counts[prefix] = n + 1
        return f"{prefix}_{n}"

    def const(self, prefix: str, value: np.ndarray) -> str:
        name = self._name(prefix)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: Sequence[str], output: str | None = None, **attrs: object) -> str:
        name = self._name(op.lower())
        out = output or f"{name}_out"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=name, **attrs))
        return out

    def weight(self, prefix: str, shape: Sequence[int], fan_in: int) -> str:
        w = self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        return self.const(prefix, w.astype(np.float32))

    def vector(self, prefix: str, size: int, scale: float = 0.1) -> str:
        return self.const(prefix, (self.rng.standard_normal(size) * scale).astype(np.float32))

    def model(
        self,
        name: str,
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
    ) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, list(inputs), list(outputs), self.initializers)
        opset_imports = [helper.make_opsetid("", self.opset)]
        model = helper.make_model(
            graph,
            opset_imports=opset_imports,
            producer_name="woodpecker.models.builders",
            ir_version=helper.find_min_ir_version_for(opset_imports),
        )
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
        return model

    # --- layers -------------------------------------------------------------------------------

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        pad: int = 0,
        bias: bool = False,
    ) -> str:
        inputs = [x, self.weight("conv_w", (cout, cin, kernel, kernel), cin * kernel * kernel)]
        if bias:
            inputs.append(self.vector("conv_b", cout))
        return self.node(
            "Conv",
            inputs,
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
            dilations=[1, 1],
            group=1,
        )

    def batch_norm(self, x: str, channels: int) -> str:
        rng = self.rng
        scale = self.const("bn_scale", rng.uniform(0.5, 1.5, channels).astype(np.float32))
        bias = self.const("bn_bias", (rng.standard_normal(channels) * 0.1).astype(np.float32))
        mean = self.const("bn_mean", (rng.standard_normal(channels) * 0.2).astype(np.float32))
        var = self.const("bn_var", rng.uniform(0.5, 2.0, channels).astype(np.float32))
        return self.node("BatchNormalization", [x, scale, bias, mean, var], epsilon=1e-5)

    def basic_block(self, x: str, cin: int, cout: int, stride: int) -> str:
        y = self.node("Relu", [self.batch_norm(self.conv(x, cin, cout, 3, stride, 1), cout)])
        y = self.batch_norm(self.conv(y, cout, cout, 3, 1, 1), cout)
        skip = x
        if stride != 1 or cin != cout:
            skip = self.batch_norm(self.conv(x, cin, cout, 1, stride, 0), cout)
        return self.node("Relu", [self.node("Add", [y, skip])])

    def clip(self, x: str, lo: float, hi: float) -> str:
        lo_name = self.const("clip_min", np.array(lo, dtype=np.float32))
        hi_name = self.const("clip_max", np.array(hi, dtype=np.float32))
        return self.node("Clip", [x, lo_name, hi_name])

    def pad(self, x: str, pads: Sequence[int], mode: str, value: float = 0.0) -> str:
        inputs = [x, self.const("pads", np.array(pads, dtype=np.int64))]
        if mode == "constant":
            inputs.append(self.const("pad_value", np.array(value, dtype=np.float32)))
        return self.node("Pad", inputs, mode=mode)

    def reduce_mean(self, x: str, axes: Sequence[int], keepdims: int) -> str:
        if self.opset >= 18:
            return self.node("ReduceMean", [x, self.const("axes", np.array(axes, dtype=np.int64))], keepdims=keepdims)
        return self.node("ReduceMean", [x], axes=list(axes), keepdims=keepdims)


def tiny_resnet(
    batch: int = 1,
    image: int = 32,
    channels: tuple[int, int] = (8, 16),
    num_classes: int = 10,
    opset: int = 17,
    seed: int = 0,
) -> onnx.ModelProto:
    """A ResNet-style CNN on `input` [batch, 3, image, image]; outputs `logits` and `probs`.

    stem: Conv 3x3 (+bias) -> BatchNormalization -> Relu -> MaxPool 2x2/2;
    block 1: basic block channels[0] -> channels[0] (identity skip);
    block 2: basic block channels[0] -> channels[1], stride 2 (1x1 strided conv + BN projection);
    head: AveragePool 2x2/2 -> GlobalAveragePool -> Flatten -> Gemm -> Softmax.
    `image` must be a multiple of 8.
    """
    if image % 8 != 0 or image < 8:
        raise ValueError(f"image must be a positive multiple of 8, got {image}")
    c0, c1 = channels
    g = _GraphBuilder(opset, seed)
    x = g.node("Relu", [g.batch_norm(g.conv("input", 3, c0, 3, 1, 1, bias=True), c0)])
    x = g.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.basic_block(x, c0, c0, 1)
    x = g.basic_block(x, c0, c1, 2)
    x = g.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.node("GlobalAveragePool", [x])
    x = g.node("Flatten", [x], axis=1)
    w = g.weight("fc_w", (num_classes, c1), c1)
    b = g.vector("fc_b", num_classes)
    logits = g.node("Gemm", [x, w, b], output="logits", transB=1)
    g.node("Softmax", [logits], output="probs", axis=-1)
    f32 = TensorProto.FLOAT
    return g.model(
        "tiny_resnet",
        [helper.make_tensor_value_info("input", f32, [batch, 3, image, image])],
        [
            helper.make_tensor_value_info("logits", f32, [batch, num_classes]),
            helper.make_tensor_value_info("probs", f32, [batch, num_classes]),
        ],
    )


def small_mlp(
    batch: int = 2,
    features: int = 16,
    hidden: int = 32,
    opset: int = 17,
    seed: int = 0,
) -> onnx.ModelProto:
    """A chain on `input` [batch, features] covering the non-CNN ops; outputs `features` and `mean`.

    h = Relu(MatMul(x, W1) + b1); a = Sigmoid(Gemm(h, W2, transB)); b = Tanh(Gemm(h, W3, alpha, beta));
    c = LeakyRelu(a * b - b); d = Clip(h / 3, -0.5, 1); features = Concat(c, d) [batch, 2*hidden];
    Reshape [batch, 2*hidden/4, 4] -> Transpose [batch, 4, 2*hidden/4] -> Pad constant -> Pad reflect
    -> mean = ReduceMean over the last axis [batch, 4].
    `hidden` must be even.
    """
    if hidden % 2 != 0:
        raise ValueError(f"hidden must be even, got {hidden}")
    g = _GraphBuilder(opset, seed)
    h = g.node("MatMul", ["input", g.weight("w1", (features, hidden), features)])
    h = g.node("Relu", [g.node("Add", [h, g.vector("b1", hidden)])])
    a = g.node("Gemm", [h, g.weight("w2", (hidden, hidden), hidden), g.vector("b2", hidden)], transB=1)
    a = g.node("Sigmoid", [a])
    b = g.node("Gemm", [h, g.weight("w3", (hidden, hidden), hidden), g.vector("b3", hidden)], alpha=0.5, beta=2.0)
    b = g.node("Tanh", [b])
    c = g.node("LeakyRelu", [g.node("Sub", [g.node("Mul", [a, b]), b])], alpha=0.2)
    d = g.clip(g.node("Div", [h, g.const("three", np.array([3.0], dtype=np.float32))]), -0.5, 1.0)
    cat = g.node("Concat", [c, d], output="features", axis=1)
    groups = 2 * hidden // 4
    r = g.node("Reshape", [cat, g.const("shape", np.array([batch, groups, 4], dtype=np.int64))])
    t = g.node("Transpose", [r], perm=[0, 2, 1])
    p = g.pad(t, [0, 0, 1, 0, 0, 2], "constant", 0.5)
    p = g.pad(p, [0, 1, 2, 0, 1, 1], "reflect")
    g.reduce_mean(p, [-1], keepdims=0)
    g.nodes[-1].output[0] = "mean"
    f32 = TensorProto.FLOAT
    return g.model(
        "small_mlp",
        [helper.make_tensor_value_info("input", f32, [batch, features])],
        [
            helper.make_tensor_value_info("features", f32, [batch, 2 * hidden]),
            helper.make_tensor_value_info("mean", f32, [batch, 6]),
        ],
    )
