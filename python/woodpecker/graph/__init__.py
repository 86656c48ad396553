"""Inference graph optimization on the `wpk` dialect: named Python passes.

| pass | module | what it does |
| --- | --- | --- |
| `wpk-fold-constants` | fold_constants.py | evaluates ops whose operands are all weights/constants with numpy |
| `wpk-fold-batchnorm` | fold_batchnorm.py | batch_norm into its conv2d/gemm/matmul producer, else a scale and shift |
| `wpk-fold-transpose` | fold_transpose.py | K^T-style transposes fold into `wpk.matmul_transposed` |
| `wpk-fuse-attention` | fuse_attention.py | matmul, scale, mask add, softmax, matmul into one attention op |
| `wpk-fuse-layernorm` | fuse_layernorm.py | the decomposed LayerNorm of older exporters into one layer_norm |
| `wpk-fuse` | fuse.py | anchor ops absorb their elementwise epilogue, elementwise chains fuse, pads fold |
| `wpk-cleanup` | cleanup.py | erases dead `wpk` ops and merges duplicates |

Each rewrite is a set of `mlir.rewrite` patterns applied by the greedy driver
(rewrite.py). Passes that read or create weights take a `GraphContext`
(context.py), which holds the module's `WeightTable`.
"""

from woodpecker.graph.context import GraphContext, LazyGraphContext

__all__ = ["GraphContext", "LazyGraphContext"]
