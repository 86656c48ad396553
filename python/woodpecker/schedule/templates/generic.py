"""`cpu.elementwise`, `cpu.reduction`, `cpu.pool` (and the fallback for any kernel): split
across cores, then walk the output in small tiles, vectorized along the innermost dim.

Loops of the main op (generic form). The schedule:

1. `chunks` pieces of the outermost parallel loop with more than one iteration, as an
   `scf.forall` (OpenMP) when `chunks > 1`; the fill, main op and epilogue are computed chunk
   by chunk;
2. the output is walked in tiles of one element along every output dim but the innermost,
   and `vector` elements along the innermost (`0`: one element, scalar code); a vectorized
   tile of a kernel without epilogue reduces in pieces (one step of every reduction loop but
   the innermost, a divisor of that one) so that its vector fits the registers; other
   reductions are done whole inside each tile;
3. tiles of `vector > 0` are vectorized (only offered when every indexing map is a projected
   permutation, i.e. no sliding windows or gathers, and `vector` divides the extent, and when
   the tile's vector, its output elements times the reduction it does at once, has at most
   `CpuMachine.max_vector_elements`: the host's lanes times its registers).
"""

from __future__ import annotations

import math

from mlir import ir

from woodpecker.kernels.space import Config, Constraint, Knob, SearchSpace
from woodpecker.schedule.kernels import Kernel, is_projected_permutation
from woodpecker.schedule.script import VECTOR_CLEANUP, Script
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.templates.base import MIN_PARALLEL_WORK


def split_dim(kernel: Kernel) -> int | None:
    """The root loop that `chunks` splits: the outermost parallel output loop longer than 1."""
    shape = kernel.output_shape
    for dim, extent in enumerate(shape):
        if extent > 1:
            return dim
    return None


def _reduction_loops(kernel: Kernel) -> list[int]:
    loops = kernel.loops
    return [i for i, parallel in enumerate(loops.parallel) if not parallel and loops.extents[i] > 1]


def reduction_chunk(kernel: Kernel, vector: int, target: CpuMachine) -> int | None:
    """Elements of the innermost reduction loop one vectorized tile reduces at a time (the
    other reduction loops step by one), so that the tile's vector fits
    `target.max_vector_elements`; None where the tile reduces everything at once (a kernel with
    an epilogue, whose main op is fused into the epilogue's tiles, or no reduction)."""
    reduced = _reduction_loops(kernel)
    if not reduced or kernel.epilogue is not None or vector == 0:
        return None
    extent = kernel.loops.extents[reduced[-1]]
    room = max(1, target.max_vector_elements // _outputs_per_tile(kernel, vector))
    return max(d for d in range(1, min(extent, room) + 1) if extent % d == 0)


def _outputs_per_tile(kernel: Kernel, vector: int) -> int:
    inner = kernel.output_shape[-1] if kernel.output_shape else 1
    return min(vector, inner)


def tile_vector_elements(kernel: Kernel, vector: int, target: CpuMachine) -> int:
    """The elements of the vector a tile of `vector` output elements (along the innermost
    output dim) becomes: its outputs times the part of the reduction it does at once (see
    `reduction_chunk`). Vectorization unrolls it completely (convert-vector-to-scf{full-unroll}),
    so it is what register pressure, code size and LLVM's time grow with (a 64x64
    GlobalAveragePool reduced whole: 4096 elements per output, minutes of LLVM)."""
    if vector == 0:
        return 0
    chunk = reduction_chunk(kernel, vector, target)
    if chunk is None:
        extents = kernel.loops.extents
        chunk = math.prod(extents[i] for i in _reduction_loops(kernel))
    return _outputs_per_tile(kernel, vector) * chunk


def _vectorizable(kernel: Kernel) -> bool:
    for op in (kernel.main, kernel.epilogue):
        if op is None:
            continue
        maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]
        if not all(is_projected_permutation(m) for m in maps):
            return False
        names = {o.name for o in op.regions[0].blocks[0].operations}
        if names & {"linalg.index", "tensor.extract"}:
            return False
    # The innermost output dim must be walked by a parallel loop of the main op.
    out_map = kernel.loops.maps[-1]
    if not out_map.results:
        return False
    last = out_map.results[-1]
    return isinstance(last, ir.AffineDimExpr) and kernel.loops.parallel[last.position]


class GenericTemplate:
    def __init__(self, kind: str, name: str | None = None):
        self.kind = kind
        self.name = name or f"cpu.{kind}"

    def space(self, kernel: Kernel, target: CpuMachine) -> SearchSpace:
        shape = kernel.output_shape
        dim = split_dim(kernel)
        extent = shape[dim] if dim is not None else 1
        chunks = tuple(
            sorted(
                {1}
                | {
                    c
                    for c in (target.threads, 2 * target.threads, 4 * target.threads, 8 * target.threads)
                    if 1 < c <= extent
                }
            )
        )
        inner = shape[-1] if shape else 1
        lanes = target.vector_lanes
        vector: tuple[int, ...] = (0,)
        if _vectorizable(kernel) and shape:
            vector = (0, *(v for v in (lanes // 2, lanes, 2 * lanes, 4 * lanes) if v > 0 and inner % v == 0))
            if len(vector) == 1 and inner <= 4 * lanes:
                vector = (0, inner)
            # A tile's vector holds `vector` output elements times the whole reduction: bounded.
            vector = tuple(v for v in vector if tile_vector_elements(kernel, v, target) <= target.max_vector_elements)
        knobs = (
            Knob("chunks", chunks, "pieces of the outermost non-unit output dim run in parallel (1: serial)"),
            Knob("vector", vector, "elements of the innermost output dim per tile, vectorized (0: scalar)"),
        )
        last = len(shape) - 1

        def split_keeps_vectors(c: dict) -> str | None:
            if c["vector"] and c["chunks"] > 1 and dim == last:
                piece = -(-extent // c["chunks"])
                if piece % c["vector"] or extent % c["chunks"]:
                    return (
                        f"chunks={c['chunks']} splits the vectorized dim ({extent}) into pieces that "
                        f"are not multiples of vector={c['vector']}"
                    )
            return None

        constraints = (Constraint("chunks keep whole vectors", ("chunks", "vector"), split_keeps_vectors),)
        work = kernel.loops.iterations
        default_chunks = target.threads if target.threads in chunks and work >= MIN_PARALLEL_WORK else 1
        vectors = [v for v in vector if v and v <= 2 * lanes]
        default = {"chunks": default_chunks, "vector": max(vectors) if vectors else 0}
        if split_keeps_vectors(default):
            default["vector"] = 0
        return SearchSpace(kernel.name, self.name, knobs, default, constraints)

    def prepare(self, kernel: Kernel, config: Config) -> None:
        pass  # no IR rewrites: tiling and vectorization are all in the script

    def schedule(self, kernel: Kernel, config: Config, target: CpuMachine, script: Script) -> None:
        s = script
        s.comment(f"{kernel.name}: {self.name} {config}")
        has_epilogue = kernel.epilogue is not None
        root = s.match_role(kernel.index, "root" if has_epilogue else "main")
        shape = kernel.output_shape
        n_out = len(shape)
        # Root loops: the output dims (epilogue), or all loops of the main op.
        root_loops = n_out if has_epilogue else len(kernel.loops.extents)
        out_map = kernel.loops.maps[-1]
        out_dim_loop = (
            [e.position if isinstance(e, ir.AffineDimExpr) else None for e in out_map.results]
            if not has_epilogue
            else list(range(n_out))
        )
        loop = None
        dim = split_dim(kernel)
        if config["chunks"] > 1 and dim is not None:
            sizes = [0] * root_loops
            position = out_dim_loop[dim]
            if position is not None:
                sizes[position] = -(-shape[dim] // config["chunks"])
                root, loop = s.tile_forall(root, sizes)
        main = root
        fill = None
        fill_elements = math.prod(shape)  # what a vectorized fill writes at once
        fill_static = True  # a fill fused into uneven chunks has a dynamic shape: not vectorizable
        if loop is not None:
            if has_epilogue:
                main, loop = s.fuse_into(s.match_role(kernel.index, "main"), loop)
            if kernel.fill is not None:
                fill, loop = s.fuse_into(s.match_role(kernel.index, "fill"), loop)
                piece = sizes[out_dim_loop[dim]]
                fill_elements = fill_elements // shape[dim] * piece
                fill_static = shape[dim] % piece == 0
        # Inner tiles: one element along every output dim but the innermost.
        sizes = [0] * root_loops
        for d, position in enumerate(out_dim_loop):
            if position is None:
                continue
            if d < n_out - 1:
                sizes[position] = 1 if shape[d] > 1 else 0
            elif config["vector"]:
                sizes[position] = config["vector"] if config["vector"] < shape[d] else 0
            else:
                sizes[position] = 1 if shape[d] > 1 else 0
        chunk = reduction_chunk(kernel, config["vector"], target)
        if chunk is not None:  # the reduction in pieces that fit the registers (no epilogue: root is main)
            reduced = _reduction_loops(kernel)
            for position in reduced[:-1]:
                sizes[position] = 1
            extent = kernel.loops.extents[reduced[-1]]
            sizes[reduced[-1]] = chunk if chunk < extent else 0
        root, inner = s.tile_for(root, sizes)
        if not has_epilogue:
            main = root
        innermost = inner[-1] if inner else None
        if innermost is not None:
            if has_epilogue:
                producer = main if loop is not None else s.match_role(kernel.index, "main")
                main, innermost = s.fuse_into(producer, innermost)
            if kernel.fill is not None and has_epilogue:
                producer = fill if fill is not None else s.match_role(kernel.index, "fill")
                fill, innermost = s.fuse_into(producer, innermost)
                fill_elements = _outputs_per_tile(kernel, config["vector"])
                # (fused into the tile from an uneven chunk it still fails to vectorize: it stays a loop)
        elif has_epilogue and loop is None:
            main = s.match_role(kernel.index, "main")
        if config["vector"]:
            # A fill of a whole chunk of outputs stays a loop unless it fits the registers (and
            # its chunk has a static shape: 7 rows in 2 chunks are pieces of 4 and 3).
            fill = fill if fill_static and fill_elements <= target.max_vector_elements else None
            for op in (root, main if has_epilogue else None, fill):
                if op is not None:
                    s.vectorize(op)
            # Only inside this kernel's loops (see cpu.matmul).
            scope = loop or (inner[0] if len(inner) > 1 else innermost) or s.func()
            s.patterns(scope, VECTOR_CLEANUP)
