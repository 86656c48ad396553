"""Tensors other than float32 at run time: int64/int32/bool inputs and outputs, the integer, bool
and indexing ops (Cast, Gather, comparisons, logic, Where) compiled end to end on the CPU.

References: numpy (exact where the computation is a copy or exact in float32) and onnxruntime
(rtol=1e-6, atol=1e-5 for the float mask arithmetic).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.errors import InputError, ShapeError, UnsupportedOperatorError
from woodpecker.importer import import_onnx

VOCAB, HIDDEN, SEQ = 30522, 64, 128


def _model(nodes, inputs, outputs, initializers=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in initializers],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def embedding_model(rng: np.random.Generator) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """input_ids [1, 128] int64 -> Gather from a [30522, 64] table, plus position embeddings
    gathered at constant position ids (folded at import)."""
    table = rng.standard_normal((VOCAB, HIDDEN)).astype(np.float32)
    positions = rng.standard_normal((512, HIDDEN)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["word_embeddings", "input_ids"], ["words"], name="word_gather"),
        helper.make_node("Gather", ["position_embeddings", "position_ids"], ["pos"], name="pos_gather"),
        helper.make_node("Add", ["words", "pos"], ["embeddings"], name="add_pos"),
    ]
    model = _model(
        nodes,
        [("input_ids", TensorProto.INT64, [1, SEQ])],
        [("embeddings", TensorProto.FLOAT, [1, SEQ, HIDDEN])],
        [
            ("word_embeddings", table),
            ("position_embeddings", positions),
            ("position_ids", np.arange(SEQ, dtype=np.int64)[None, :]),
        ],
    )
    return model, table, positions


@pytest.mark.parametrize("opt_level", [0, 2])
def test_embedding_model_matches_numpy_exactly(opt_level: int) -> None:
    rng = np.random.default_rng(0)
    model, table, positions = embedding_model(rng)
    compiled = woodpecker.compile(model, opt_level=opt_level)
    ids = rng.integers(0, VOCAB, (1, SEQ), dtype=np.int64)
    ids[0, :3] = [0, VOCAB - 1, -1]  # both ends, and a negative index (counts from the end)
    (got,) = compiled.run(None, {"input_ids": ids})
    expected = table[np.where(ids < 0, ids + VOCAB, ids)] + positions[None, :SEQ]
    assert got.dtype == np.float32 and got.shape == (1, SEQ, HIDDEN)
    np.testing.assert_array_equal(got, expected)


def mask_model() -> onnx.ModelProto:
    """attention_mask [1, 128] int64 -> Unsqueeze (int64 at run time) -> Cast float ->
    (1 - m) * -10000 added to scores, as exported BERT models compute it."""
    nodes = [
        helper.make_node("Unsqueeze", ["attention_mask", "axes"], ["mask4"], name="unsqueeze"),
        helper.make_node("Cast", ["mask4"], ["maskf"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("Sub", ["one", "maskf"], ["inverted"], name="invert"),
        helper.make_node("Mul", ["inverted", "big"], ["bias"], name="scale"),
        helper.make_node("Add", ["scores", "bias"], ["masked"], name="add_mask"),
    ]
    return _model(
        nodes,
        [("scores", TensorProto.FLOAT, [1, 2, SEQ, SEQ]), ("attention_mask", TensorProto.INT64, [1, SEQ])],
        [("masked", TensorProto.FLOAT, [1, 2, SEQ, SEQ])],
        [
            ("axes", np.array([1, 2], dtype=np.int64)),
            ("one", np.array(1.0, dtype=np.float32)),
            ("big", np.array(-10000.0, dtype=np.float32)),
        ],
    )


@pytest.mark.parametrize("opt_level", [0, 2])
def test_mask_model_matches_onnxruntime(opt_level: int) -> None:
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(1)
    model = mask_model()
    feeds = {
        "scores": rng.standard_normal((1, 2, SEQ, SEQ)).astype(np.float32),
        "attention_mask": (rng.random((1, SEQ)) < 0.7).astype(np.int64),
    }
    compiled = woodpecker.compile(model, opt_level=opt_level)
    (got,) = compiled.run(None, feeds)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, feeds)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)


def test_int_and_bool_reshapes_at_run_time() -> None:
    """Reshape, Squeeze and Unsqueeze move int64 and bool data at run time."""
    nodes = [
        helper.make_node("Reshape", ["ids", "shape"], ["r"]),
        helper.make_node("Unsqueeze", ["r", "axes"], ["u"]),
        helper.make_node("Greater", ["u", "zero"], ["b"]),
        helper.make_node("Squeeze", ["b", "axes"], ["s"]),
    ]
    model = _model(
        nodes,
        [("ids", TensorProto.INT64, [2, 6])],
        [("u", TensorProto.INT64, [1, 3, 4]), ("s", TensorProto.BOOL, [3, 4])],
        [
            ("shape", np.array([3, 4], np.int64)),
            ("axes", np.array([0], np.int64)),
            ("zero", np.array(0, np.int64)),
        ],
    )
    ids = np.arange(-6, 6, dtype=np.int64).reshape(2, 6) * (1 << 40)
    for opt_level in (0, 2):
        u, b = woodpecker.compile(model, opt_level=opt_level).run(None, {"ids": ids})
        np.testing.assert_array_equal(u, ids.reshape(1, 3, 4))
        np.testing.assert_array_equal(b, ids.reshape(3, 4) > 0)


def test_identity_of_int_and_bool_inputs_passes_them_through() -> None:
    model = _model(
        [helper.make_node("Identity", ["i"], ["j"]), helper.make_node("Not", ["b"], ["n"])],
        [("i", TensorProto.INT32, [3]), ("b", TensorProto.BOOL, [2, 2])],
        [("j", TensorProto.INT32, [3]), ("n", TensorProto.BOOL, [2, 2])],
    )
    i, b = np.array([-5, 0, 2**31 - 1], np.int32), np.array([[True, False], [False, True]])
    j, n = woodpecker.compile(model).run(None, {"i": i, "b": b})
    np.testing.assert_array_equal(j, i)
    np.testing.assert_array_equal(n, ~b)


def test_bool_and_int_outputs_and_inputs() -> None:
    """A bool input, int32 indices, comparisons, logic, Where and Cast back to int64, with
    int64, int32 and bool outputs, against numpy."""
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("Greater", ["x", "zero"], ["positive"]),
        helper.make_node("And", ["positive", "keep"], ["kept"]),
        helper.make_node("Xor", ["kept", "keep"], ["flipped"]),
        helper.make_node("Where", ["kept", "x", "fill"], ["selected"]),
        helper.make_node("Cast", ["selected"], ["as_int"], to=TensorProto.INT64),
        helper.make_node("Gather", ["x", "rows"], ["rows_x"], axis=1),
        helper.make_node("Cast", ["kept"], ["kept32"], to=TensorProto.INT32),
        helper.make_node("Equal", ["kept32", "one32"], ["same"]),
        helper.make_node("IsNaN", ["x"], ["nan"]),
        helper.make_node("Or", ["same", "nan"], ["any"]),
    ]
    model = _model(
        nodes,
        [
            ("x", TensorProto.FLOAT, [3, 5]),
            ("keep", TensorProto.BOOL, [3, 5]),
            ("rows", TensorProto.INT32, [2, 2]),
        ],
        [
            ("as_int", TensorProto.INT64, [3, 5]),
            ("flipped", TensorProto.BOOL, [3, 5]),
            ("rows_x", TensorProto.FLOAT, [3, 2, 2]),
            ("kept32", TensorProto.INT32, [3, 5]),
            ("any", TensorProto.BOOL, [3, 5]),
        ],
        [
            ("zero", np.array(0.0, np.float32)),
            ("fill", np.array([-7.5], np.float32)),
            ("one32", np.array(1, np.int32)),
        ],
    )
    x = (rng.standard_normal((3, 5)) * 10).astype(np.float32)
    x[2, 4] = np.nan
    keep = rng.random((3, 5)) < 0.5
    rows = np.array([[0, -1], [4, 2]], dtype=np.int32)
    kept = (x > 0) & keep
    selected = np.where(kept, x, np.float32(-7.5))
    expected = [
        np.trunc(selected).astype(np.int64),
        kept ^ keep,
        x[:, np.where(rows < 0, rows + 5, rows)],
        kept.astype(np.int32),
        kept | np.isnan(x),
    ]
    for opt_level in (0, 2):
        got = woodpecker.compile(model, opt_level=opt_level).run(None, {"x": x, "keep": keep, "rows": rows})
        for g, e in zip(got, expected, strict=True):
            assert g.dtype == e.dtype
            np.testing.assert_array_equal(g, e)


def test_cast_float_to_int_truncates_and_int_to_bool() -> None:
    nodes = [
        helper.make_node("Cast", ["x"], ["i"], to=TensorProto.INT32),
        helper.make_node("Cast", ["i"], ["b"], to=TensorProto.BOOL),
        helper.make_node("Cast", ["b"], ["f"], to=TensorProto.FLOAT),
    ]
    model = _model(
        nodes,
        [("x", TensorProto.FLOAT, [6])],
        [("i", TensorProto.INT32, [6]), ("f", TensorProto.FLOAT, [6])],
    )
    x = np.array([-2.7, -0.5, 0.0, 0.9, 3.5, 1e6], dtype=np.float32)
    i, f = woodpecker.compile(model).run(None, {"x": x})
    np.testing.assert_array_equal(i, np.array([-2, 0, 0, 0, 3, 1000000], dtype=np.int32))
    np.testing.assert_array_equal(f, np.array([1, 0, 0, 0, 1, 1], dtype=np.float32))


def test_constant_inputs_fold_at_import() -> None:
    """Cast, Gather, Less and Where of constants (float64 data included) fold to an initializer."""
    nodes = [
        helper.make_node("Cast", ["d"], ["df"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["df", "idx"], ["g"]),
        helper.make_node("Less", ["g", "half"], ["lt"]),
        helper.make_node("Where", ["lt", "g", "half"], ["w"]),
        helper.make_node("Add", ["x", "w"], ["y"]),
    ]
    model = _model(
        nodes,
        [("x", TensorProto.FLOAT, [2])],
        [("y", TensorProto.FLOAT, [2])],
        [
            ("d", np.array([0.25, 0.75, 0.125], np.float64)),
            ("idx", np.array([2, -2], np.int64)),
            ("half", np.array(0.5, np.float32)),
        ],
    )
    text = str(import_onnx(model))
    assert "wpk.gather" not in text and "wpk.cast" not in text and "wpk.where" not in text
    (y,) = woodpecker.compile(model).run(None, {"x": np.array([1.0, 2.0], np.float32)})
    np.testing.assert_array_equal(y, np.array([1.125, 2.5], np.float32))


def test_feed_of_the_wrong_dtype_is_one_clear_line() -> None:
    model, _, _ = embedding_model(np.random.default_rng(3))
    compiled = woodpecker.compile(model, opt_level=0)
    ids = np.zeros((1, SEQ), dtype=np.int32)
    with pytest.raises(InputError) as info:
        compiled.run(None, {"input_ids": ids})
    message = str(info.value)
    assert message == "input 'input_ids' has dtype int32; the model expects int64"
    assert "\n" not in message
    with pytest.raises(InputError, match="input 'input_ids' has dtype float32; the model expects int64"):
        compiled.run(None, {"input_ids": ids.astype(np.float32)})


def test_saved_model_keeps_dtypes(tmp_path) -> None:
    model, table, positions = embedding_model(np.random.default_rng(4))
    compiled = woodpecker.compile(model, opt_level=2)
    compiled.save(tmp_path / "m")
    loaded = woodpecker.load(tmp_path / "m")
    ids = np.arange(SEQ, dtype=np.int64)[None, :] * 7
    (got,) = loaded.run(None, {"input_ids": ids})
    np.testing.assert_array_equal(got, table[ids] + positions[None, :SEQ])
    with pytest.raises(InputError, match="has dtype float32; the model expects int64"):
        loaded.run(None, {"input_ids": ids.astype(np.float32)})


def test_run_time_cast_to_double_is_refused_naming_the_node() -> None:
    model = _model(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.DOUBLE, name="to_double")],
        [("x", TensorProto.FLOAT, [2])],
        [("y", TensorProto.DOUBLE, [2])],
    )
    with pytest.raises(UnsupportedOperatorError, match=r"to_double.*Cast to DOUBLE of run-time data"):
        woodpecker.compile(model)


def test_unsupported_input_dtype_is_refused() -> None:
    model = _model(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
        [("x", TensorProto.UINT8, [2])],
        [("y", TensorProto.FLOAT, [2])],
    )
    with pytest.raises(ShapeError, match="graph input 'x' has element type UINT8"):
        woodpecker.compile(model)


def test_gather_of_an_out_of_range_constant_index_is_an_error() -> None:
    model = _model(
        [helper.make_node("Gather", ["x", "idx"], ["y"], name="bad_gather")],
        [("x", TensorProto.FLOAT, [4, 3])],
        [("y", TensorProto.FLOAT, [1, 3])],
        [("idx", np.array([4], np.int64))],
    )
    with pytest.raises(ShapeError, match=r"bad_gather.*index 4 is out of range for axis 0 of size 4"):
        woodpecker.compile(model)


def test_tuning_feeds_kernels_their_argument_dtypes() -> None:
    """The tuner's random arrays for a gather kernel are int64 indices (0 or 1, in bounds) and
    the f32 table, not f32 arrays half the size of the indices; the kernel measures."""
    from woodpecker.frontend import lower_model
    from woodpecker.measure.cpu_runner import InProcessCpuRunner, task_arrays
    from woodpecker.schedule.target import CpuMachine
    from woodpecker.schedule.tasks import cpu_tasks
    from woodpecker.stats import CompileStats

    model, _, _ = embedding_model(np.random.default_rng(5))
    lowered = lower_model(model, 2, None, CompileStats(), None)
    with lowered.imported.context:
        tasks = [t.task for t in cpu_tasks(lowered.module, len(lowered.weights), CpuMachine.host(threads=1))]
    gather = next(t for t in tasks if t.arg_shapes[0] == (1, SEQ))
    inputs, weights = task_arrays(gather, seed=0)
    assert [a.dtype for a in inputs + weights] == [np.dtype(np.int64), np.dtype(np.float32)]
    assert set(np.unique(inputs[0])) <= {0, 1}
    assert InProcessCpuRunner().measure_one(gather, {}).error is None


def test_cuda_target_refuses_int_inputs_in_one_line() -> None:
    from woodpecker.errors import CompilationError

    model, _, _ = embedding_model(np.random.default_rng(6))
    with pytest.raises(CompilationError, match="input 'input_ids' is int64; the CUDA target compiles float32"):
        woodpecker.compile(model, target="cuda")


@pytest.mark.parametrize(("elem", "dtype"), [(TensorProto.FLOAT, np.float32), (TensorProto.INT64, np.int64)])
def test_gather_nd_with_constant_indices_at_run_time(elem: int, dtype: type) -> None:
    """GatherND (batch_dims 0, constant index tuples incl. negative ones) on run-time data, as
    the transformers exporters emit it on the mask: a reshape and a Gather, exact vs numpy."""
    indices = np.array([[[0, 1], [1, -1]], [[1, 0], [0, 0]]], np.int64)  # tuples of length 2
    model = _model(
        [helper.make_node("GatherND", ["x", "idx"], ["y"])],
        [("x", elem, [2, 3, 4])],
        [("y", elem, [2, 2, 4])],
        [("idx", indices)],
    )
    x = (np.arange(24).reshape(2, 3, 4) * 3 - 7).astype(dtype)
    expected = np.stack([np.stack([x[tuple(t)] for t in row]) for row in indices])
    for opt_level in (0, 2):
        (y,) = woodpecker.compile(model, opt_level=opt_level).run(None, {"x": x})
        np.testing.assert_array_equal(y, expected)


def test_gather_nd_index_out_of_range_names_the_node() -> None:
    model = _model(
        [helper.make_node("GatherND", ["x", "idx"], ["y"], name="pick")],
        [("x", TensorProto.FLOAT, [2, 3])],
        [("y", TensorProto.FLOAT, [1])],
        [("idx", np.array([[2, 0]], np.int64))],
    )
    with pytest.raises(ShapeError, match=r"node 'pick' \(op GatherND\).*out of range for axis 0 of size 2"):
        import_onnx(model)


@pytest.mark.parametrize("pattern", ["all_true", "all_false", "mixed"])
def test_bool_constant_masks(pattern: str) -> None:
    """A bool initializer And-ed with a run-time mask selects like numpy. The all-true one (a
    splat: DistilBERT's and BERT's `bitwise_and`) used to be read as mostly false."""
    c = {
        "all_true": np.ones((1, 1, 128, 1), bool),
        "all_false": np.zeros((1, 1, 128, 1), bool),
        "mixed": (np.arange(128) % 3 == 0).reshape(1, 1, 128, 1),
    }[pattern]
    model = _model(
        [helper.make_node("And", ["c", "m"], ["a"]), helper.make_node("Where", ["a", "x", "y"], ["z"])],
        [("m", TensorProto.BOOL, [1, 1, 1, 128]), ("x", TensorProto.FLOAT, [1, 1, 128, 128])],
        [("z", TensorProto.FLOAT, [1, 1, 128, 128])],
        [("c", c), ("y", np.array(-5.0, np.float32))],
    )
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 1, 128, 128)).astype(np.float32)
    m = rng.random((1, 1, 1, 128)) < 0.8
    for opt_level in (0, 2):
        (z,) = woodpecker.compile(model, opt_level=opt_level).run(None, {"m": m, "x": x})
        np.testing.assert_array_equal(z, np.where(c & m, x, np.float32(-5.0)))


def vit_qkv_select_model() -> onnx.ModelProto:
    """torchvision ViT's in-projection split (issue #16): [seq, 1, 3*dim] -> Reshape
    [seq, 1, 3, dim] -> Unsqueeze 0 -> Transpose (3, 1, 2, 0, 4) -> Squeeze -2 -> three
    Gathers with 0-d constant indices along axis 0 (q, k, v), combined as q * k + v."""
    seq, dim = 5, 8
    nodes = [
        helper.make_node("Reshape", ["x", "split_shape"], ["split"]),
        helper.make_node("Unsqueeze", ["split", "zero_axes"], ["unsqueezed"]),
        helper.make_node("Transpose", ["unsqueezed"], ["moved"], perm=[3, 1, 2, 0, 4]),
        helper.make_node("Squeeze", ["moved", "squeeze_axes"], ["qkv"]),
        helper.make_node("Gather", ["qkv", "i0"], ["q"], axis=0, name="select_q"),
        helper.make_node("Gather", ["qkv", "i1"], ["k"], axis=0, name="select_k"),
        helper.make_node("Gather", ["qkv", "i2"], ["v"], axis=0, name="select_v"),
        helper.make_node("Mul", ["q", "k"], ["qk"]),
        helper.make_node("Add", ["qk", "v"], ["y"]),
    ]
    return _model(
        nodes,
        [("x", TensorProto.FLOAT, [seq, 1, 3 * dim])],
        [("y", TensorProto.FLOAT, [seq, 1, dim])],
        [
            ("split_shape", np.array([seq, 1, 3, dim], np.int64)),
            ("zero_axes", np.array([0], np.int64)),
            ("squeeze_axes", np.array([-2], np.int64)),
            ("i0", np.array(0, np.int64)),
            ("i1", np.array(1, np.int64)),
            ("i2", np.array(-1, np.int64)),
        ],
    )


@pytest.mark.parametrize("opt_level", [0, 2])
def test_gather_scalar_index_matches_onnxruntime(opt_level: int) -> None:
    """A 0-d constant index stays 0-d when materialized (np.ascontiguousarray made it [1],
    so the lowered linalg.generic indexed loops it did not have and MLIR aborted compiling
    ViT-B/16). Reference: onnxruntime, relative L2 <= 1e-4."""
    ort = pytest.importorskip("onnxruntime")
    model = vit_qkv_select_model()
    x = np.random.default_rng(16).standard_normal((5, 1, 24)).astype(np.float32)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {"x": x})
    (got,) = woodpecker.compile(model, opt_level=opt_level).run(None, {"x": x})
    assert got.shape == expected.shape == (5, 1, 8)
    assert np.linalg.norm(got - expected) <= 1e-4 * np.linalg.norm(expected)


def test_zero_d_integer_constant_keeps_rank_zero() -> None:
    model = _model(
        [helper.make_node("Gather", ["x", "i"], ["y"], axis=1, name="pick")],
        [("x", TensorProto.FLOAT, [2, 3, 4])],
        [("y", TensorProto.FLOAT, [2, 4])],
        [("i", np.array(2, np.int64))],
    )
    text = str(import_onnx(model))
    assert "tensor<i64>" in text and "tensor<1xi64>" not in text


def test_scatter_nd_with_constant_indices_at_run_time() -> None:
    """ScatterND (reduction none) of run-time updates into run-time data at constant index
    tuples (negative ones too), as torch.roll/slice assignment export it: exact vs numpy."""
    indices = np.array([[0, 2], [1, -1], [0, 0]], np.int64)  # rows (0,2), (1,3), (0,0) of [2, 4, 5]
    model = _model(
        [helper.make_node("ScatterND", ["x", "idx", "u"], ["y"])],
        [("x", TensorProto.FLOAT, [2, 4, 5]), ("u", TensorProto.FLOAT, [3, 5])],
        [("y", TensorProto.FLOAT, [2, 4, 5])],
        [("idx", indices)],
    )
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)
    u = rng.standard_normal((3, 5)).astype(np.float32)
    expected = x.copy()
    for row, (i, j) in zip(u, indices, strict=True):
        expected[i, j] = row
    for opt_level in (0, 2):
        (y,) = woodpecker.compile(model, opt_level=opt_level).run(None, {"x": x, "u": u})
        np.testing.assert_array_equal(y, expected)
