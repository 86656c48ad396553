"""Generation and caching of the ONNX backend *node* test data.

onnx >= 1.2x no longer ships `onnx/backend/test/data/node`; it ships the generators
(`onnx.backend.test.case.node.collect_testcases()`). We write the same layout that
`onnx.backend.test.cmd_tools generate-data` used to write for node tests:

    <cache>/node/<test_name>/model.onnx
    <cache>/node/<test_name>/test_data_set_<i>/{input,output}_<j>.pb
    <cache>/index.json        # written last: {"onnx_version", "generation_seconds", "tests": {...}}

Every node test is generated (not only those of supported ops): collecting the test cases is the
slow part (~12 s, the generators run at import time and cannot be filtered by module reliably,
e.g. `test_swish_expanded` lives in swish.py but only uses Sigmoid and Mul), writing them all
adds a few seconds, and a complete cache never goes stale when an op is added to the importer.

The cache is generated once per machine and onnx version, in a subprocess (the generators reseed
numpy's global RNG and emit warnings), into a temporary directory that is renamed into place, so
concurrent pytest processes never see a half-written cache.

Location: `$WPK_NODE_TEST_DIR` if set, else `<repo>/.cache/onnx-node-tests/<onnx version>/`.
Run `python tests/py/conformance/data.py [DIR]` to (re)generate by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
INDEX_FILE = "index.json"
ENV_DIR = "WPK_NODE_TEST_DIR"


def _onnx_version() -> str:
    import onnx

    return onnx.__version__


def default_cache_dir() -> Path:
    """`$WPK_NODE_TEST_DIR`, else `<repo>/.cache/onnx-node-tests/<onnx version>/`."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser().resolve()
    return REPO_ROOT / ".cache" / "onnx-node-tests" / _onnx_version()


def load_index(cache_dir: Path) -> dict[str, Any]:
    with open(cache_dir / INDEX_FILE) as f:
        return json.load(f)


def ensure_node_test_data(cache_dir: Path | None = None, verbose: bool = True) -> Path:
    """Returns a directory holding the node test data, generating it only if it is missing."""
    cache_dir = cache_dir or default_cache_dir()
    if (cache_dir / INDEX_FILE).is_file():
        return cache_dir
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir.parent / f".{cache_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    if verbose:
        print(f"[woodpecker] generating ONNX node test data into {cache_dir} ...", file=sys.stderr)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), str(tmp)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(
            f"generating the ONNX node test data failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    elapsed = time.perf_counter() - start
    try:
        os.rename(tmp, cache_dir)
    except OSError:
        # Another process finished first: keep its cache, drop ours.
        shutil.rmtree(tmp, ignore_errors=True)
        if not (cache_dir / INDEX_FILE).is_file():
            raise
    if verbose:
        print(f"[woodpecker] node test data generated in {elapsed:.1f} s (subprocess)", file=sys.stderr)
    return cache_dir


def _graph_op_types(graph: Any) -> set[str]:
    """Op types used by a graph and its subgraphs; non-default domains are written `domain::Op`."""
    from onnx import AttributeProto

    ops: set[str] = set()
    for node in graph.node:
        domain = node.domain or ""
        ops.add(node.op_type if domain in ("", "ai.onnx") else f"{domain}::{node.op_type}")
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                ops |= _graph_op_types(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                for g in attr.graphs:
                    ops |= _graph_op_types(g)
    return ops


def _serialize_value(value: Any, value_info: Any) -> bytes:
    """Mirrors onnx.backend.test.cmd_tools.generate_data for one input or output."""
    from onnx import TensorProto, numpy_helper

    t = value_info.type
    if t.HasField("map_type"):
        return numpy_helper.from_dict(value, value_info.name).SerializeToString()
    if t.HasField("sequence_type"):
        return numpy_helper.from_list(value, value_info.name).SerializeToString()
    if t.HasField("optional_type"):
        return numpy_helper.from_optional(value, value_info.name).SerializeToString()
    if isinstance(value, TensorProto):
        return value.SerializeToString()
    return numpy_helper.from_array(value, value_info.name).SerializeToString()


def generate_node_tests(out_dir: Path) -> dict[str, Any]:
    """Writes every ONNX node test case under `out_dir` and returns the index (also written)."""
    import warnings

    from onnx.backend.test.case import node as node_cases

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = [c for c in node_cases.collect_testcases() if c.kind == "node"]
    collect_seconds = time.perf_counter() - start

    tests: dict[str, Any] = {}
    for case in cases:
        assert case.model is not None and case.data_sets is not None
        case_dir = out_dir / "node" / case.name
        case_dir.mkdir(parents=True)
        (case_dir / "model.onnx").write_bytes(case.model.SerializeToString())
        graph = case.model.graph
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = case_dir / f"test_data_set_{i}"
            ds.mkdir()
            for j, value in enumerate(inputs):
                (ds / f"input_{j}.pb").write_bytes(_serialize_value(value, graph.input[j]))
            for j, value in enumerate(outputs):
                (ds / f"output_{j}.pb").write_bytes(_serialize_value(value, graph.output[j]))
        tests[case.name] = {
            "ops": sorted(_graph_op_types(graph)),
            "opset": {(o.domain or "ai.onnx"): o.version for o in case.model.opset_import},
            "data_sets": len(case.data_sets),
            "num_nodes": len(graph.node),
        }
    index = {
        "onnx_version": _onnx_version(),
        "collect_seconds": round(collect_seconds, 2),
        "generation_seconds": round(time.perf_counter() - start, 2),
        "tests": tests,
    }
    (out_dir / INDEX_FILE).write_text(json.dumps(index, indent=1, sort_keys=True))
    return index


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else default_cache_dir()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    index = generate_node_tests(out)
    print(
        f"{len(index['tests'])} node tests written to {out} in {index['generation_seconds']} s "
        f"(collection {index['collect_seconds']} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
