"""Applying a `GpuConfig` to one kernel function (on tensors) with the transform dialect.

Stage 1 tiles the root op with `scf.forall` mapped to `#gpu.block<x/y/z>` and fuses the
rest of the kernel into it (`fuse_into_containing_op`, consumers first). Then either

* without shared memory: the root is tiled again with `num_threads` mapped to
  `#gpu.thread<x/y/z>` and the rest fused into that loop too; each thread then runs the
  whole chain (fill, main op, epilogue) on its own output tile, optionally with the main
  op's reduction loops tiled by `reduction_tile` (`tile_using_for`);
* with `promote_shared`: the main op's reduction loops are tiled by `reduction_tile` at
  block level, each input tile of the main op is copied into a
  `bufferization.alloc_tensor` in `#gpu.address_space<workgroup>` by a `linalg.copy`
  (inserted here in Python, stage 1b), and stage 2 maps every op of the block to threads
  separately: the copies with `gpu.map_copy_to_threads`, the others with `num_threads`.
  `gpu.map_nested_forall_to_threads` later puts a barrier after each.

With `gpu_mapping=False` the same loops are built, for a CPU check of the schedule's
numbers: no memory space on the shared tiles, and the foralls can then be lowered with
`scf-forall-to-for`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlir import ir
from mlir.dialects import bufferization, linalg
from mlir.dialects.transform import interpreter

from woodpecker.errors import CompilationError
from woodpecker.gpu.config import GpuConfig, LaunchShape
from woodpecker.gpu.partition import MAIN_TAG, OP_TAG, ROOT_TAG, KernelPlan

COPY_TAG = "wpk.gpu.copy"
WORKGROUP = "#gpu.address_space<workgroup>"
ANY = "!transform.any_op"


@dataclass
class _Script:
    lines: list[str]
    counter: int = 0
    consumes: bool = False  # whether the script consumes its function handle

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"%{stem}{self.counter}"

    def add(self, line: str) -> None:
        self.lines.append("    " + line)

    def cleanup(self) -> None:
        """Canonicalize and CSE the function (drops the producers left dead by fusion)."""
        self.add("transform.apply_patterns to %f { transform.apply_patterns.canonicalization } : " + ANY)
        self.add(f"transform.apply_cse to %f : {ANY}")

    def text(self) -> str:
        mode = "consumed" if self.consumes else "readonly"
        head = [
            "module attributes {transform.with_named_sequence} {",
            f"  transform.named_sequence @__transform_main(%f: {ANY} {{transform.{mode}}}) {{",
        ]
        return "\n".join([*head, *self.lines, "    transform.yield", "  }", "}"])

    def match(self, attr: str) -> str:
        handle = self.fresh("m")
        self.add(f"{handle} = transform.structured.match attributes{{{attr}}} in %f : ({ANY}) -> {ANY}")
        return handle

    def tile_forall(self, target: str, sizes: list[int], mapping: list[str], num_threads: bool) -> tuple[str, str]:
        tiled, loop = self.fresh("t"), self.fresh("l")
        what = "num_threads" if num_threads else "tile_sizes"
        attrs = ", ".join(mapping)
        self.add(
            f"{tiled}, {loop} = transform.structured.tile_using_forall {target} {what} {sizes} "
            f"(mapping = [{attrs}]) : ({ANY}) -> ({ANY}, {ANY})"
        )
        return tiled, loop

    def fuse(self, producer: str, into: str) -> tuple[str, str]:
        fused, loop = self.fresh("p"), self.fresh("l")
        self.add(
            f"{fused}, {loop} = transform.structured.fuse_into_containing_op {producer} into {into} "
            f": ({ANY}, {ANY}) -> ({ANY}, {ANY})"
        )
        return fused, loop

    def tile_for(self, target: str, sizes: list[int]) -> str:
        loops = sum(1 for s in sizes if s)
        if not loops:
            return target
        tiled = self.fresh("t")
        names = [self.fresh("l") for _ in range(loops)]
        results = ", ".join([ANY] * (loops + 1))
        self.add(
            f"{tiled}, {', '.join(names)} = transform.structured.tile_using_for {target} tile_sizes {sizes} "
            f": ({ANY}) -> ({results})"
        )
        return tiled


@dataclass(frozen=True)
class _Level:
    """Per-output-dim forall sizes of one level, and the output dims mapped to x, y, z."""

    kind: str  # "block" or "thread"
    sizes: tuple[int, ...]
    xyz: tuple[int, ...]


def _forall(plan: KernelPlan, position: int, level: _Level) -> tuple[list[int], list[str]]:
    """Per-loop sizes of op `position` (0 on loops that are not output dims) and the mapping
    of the forall dims they create, which follow the op's loop order."""
    n_loops, output_loops = plan.op_loops[position]
    sizes = [0] * n_loops
    letter: dict[int, str] = {}
    for d, loop in enumerate(output_loops):
        sizes[loop] = level.sizes[d]
        if d in level.xyz:
            letter[loop] = "xyz"[level.xyz.index(d)]
    mapping = [f"#gpu.{level.kind}<{letter[loop]}>" for loop in range(n_loops) if sizes[loop]]
    return sizes, mapping


def _block_level(plan: KernelPlan, shape: LaunchShape) -> _Level:
    out = plan.problem.output_shape
    sizes = [shape.block_tile[d] if d in shape.grid_dims else 0 for d in range(len(out))]
    xyz = shape.grid_dims
    if not any(sizes) and out:
        sizes[-1], xyz = out[-1], (len(out) - 1,)  # one block: a one-iteration forall
    return _Level("block", tuple(sizes), xyz)


def _thread_level(plan: KernelPlan, shape: LaunchShape) -> _Level:
    out = plan.problem.output_shape
    counts = [shape.block_tile[d] // shape.thread_tile[d] if d in shape.thread_dims else 0 for d in range(len(out))]
    xyz = shape.thread_dims
    if not any(counts) and out:
        counts[-1], xyz = 1, (len(out) - 1,)  # one thread
    return _Level("thread", tuple(counts), xyz)


def _reduction_sizes(plan: KernelPlan, shape: LaunchShape) -> list[int]:
    n_loops, _ = plan.op_loops[plan.main_position]
    sizes = [0] * n_loops
    for loop, tile, extent in zip(
        plan.problem.reduction_loops, shape.reduction_tile, plan.problem.reduction_extents, strict=True
    ):
        sizes[loop] = tile if tile < extent else 0
    return sizes


def _positions(plan: KernelPlan) -> list[int]:
    return sorted(plan.op_loops)


def stage1(plan: KernelPlan, config: GpuConfig, shape: LaunchShape) -> str:
    """Block tiling and fusion (and, without promotion, thread tiling too)."""
    s = _Script([])
    root = s.match(ROOT_TAG)
    tiled_root, block_loop = s.tile_forall(root, *_forall(plan, plan.root_position, _block_level(plan, shape)), False)
    fused: dict[int, str] = {plan.root_position: tiled_root}
    for position in reversed(_positions(plan)):
        if position == plan.root_position:
            continue
        handle, block_loop = s.fuse(s.match(f"{OP_TAG} = {position} : i64"), block_loop)
        fused[position] = handle
    red = _reduction_sizes(plan, shape)
    if config.promote_shared:
        s.tile_for(fused[plan.main_position], red)
        s.cleanup()
        return s.text()
    threads = _thread_level(plan, shape)
    tiled, thread_loop = s.tile_forall(tiled_root, *_forall(plan, plan.root_position, threads), True)
    main = tiled
    for position in reversed(_positions(plan)):
        if position == plan.root_position:
            continue
        handle, thread_loop = s.fuse(fused[position], thread_loop)
        if position == plan.main_position:
            main = handle
    s.tile_for(main, red)
    s.cleanup()
    return s.text()


def stage2(plan: KernelPlan, config: GpuConfig, shape: LaunchShape, copy_shapes: list[tuple[int, ...]]) -> str:
    """Thread mapping of every op of the block when operands are promoted to shared memory."""
    s = _Script([])
    threads = _thread_level(plan, shape)
    for position in _positions(plan):
        s.tile_forall(s.match(f"{OP_TAG} = {position} : i64"), *_forall(plan, position, threads), True)
    for position, copy_shape in enumerate(copy_shapes):
        counts = copy_thread_counts(copy_shape, shape.threads, config.vector_width)
        n = sum(1 for v in counts if v)
        mapping = [f"#gpu.thread<linear_dim_{n - 1 - i}>" for i in range(n)]
        s.tile_forall(s.match(f"{COPY_TAG} = {position} : i64"), counts, mapping, True)
    s.cleanup()
    return s.text()


def copy_thread_counts(shape: tuple[int, ...], threads: int, vector_width: int) -> list[int]:
    """Threads along each dim of a copy into shared memory: innermost dims first, every count
    divides its dim, each thread moves `vector_width` contiguous elements when they divide
    the innermost dim. Dims that get one thread are left untiled (0)."""
    counts = [0] * len(shape)
    left = threads
    for d in reversed(range(len(shape))):
        chunk = vector_width if d == len(shape) - 1 and shape[d] % vector_width == 0 else 1
        n = _largest_divisor(shape[d] // chunk, left)
        if n > 1:
            counts[d] = n
            left //= n
    if not any(counts) and counts:
        counts[-1] = 1
    return counts


def _largest_divisor(n: int, at_most: int) -> int:
    return next(d for d in range(min(n, at_most), 0, -1) if n % d == 0) if n > 0 else 1


def map_to_gpu_script(block: tuple[int, int, int]) -> str:
    """After bufferization: foralls -> gpu.launch with block and thread ids."""
    s = _Script([], consumes=True)
    launch = s.fresh("g")
    s.add(f"{launch} = transform.gpu.map_forall_to_blocks %f generate_gpu_launch : ({ANY}) -> {ANY}")
    s.add(
        f"transform.gpu.map_nested_forall_to_threads {launch} block_dims = [{block[0]}, {block[1]}, {block[2]}] "
        f": ({ANY}) -> {ANY}"
    )
    return s.text()


def apply_script(fn: ir.Operation, text: str, what: str) -> None:
    script = ir.Module.parse(text, context=fn.context)
    try:
        interpreter.apply_named_sequence(fn, script.body.operations[0], script)
    except ir.MLIRError as err:
        raise CompilationError(f"{what} failed: {err}\n--- transform script ---\n{text}") from None


def _find(fn: ir.Operation, predicate) -> list[ir.Operation]:
    found: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if predicate(op):
            found.append(op)
        return ir.WalkResult.ADVANCE

    fn.walk(visit, ir.WalkOrder.PRE_ORDER)
    return found


def insert_shared_copies(fn: ir.Operation, plan: KernelPlan, gpu_mapping: bool) -> list[tuple[int, ...]]:
    """Stage 1b: copies of the main op's read inputs into fresh (shared) tensors, tagged
    `wpk.gpu.copy = <n>`; returns their shapes."""
    mains = _find(fn, lambda op: MAIN_TAG in op.attributes)
    loops = _find(fn, lambda op: op.name == "scf.forall")
    if len(mains) != 1 or not loops:
        raise CompilationError(f"kernel {plan.name}: block tiling did not leave one main op in a forall")
    main, block_loop = mains[0], loops[0]
    body = block_loop.regions[0].blocks[0]
    space = ir.Attribute.parse(WORKGROUP, fn.context) if gpu_mapping else None
    shapes: list[tuple[int, ...]] = []
    count = 0
    for access in plan.problem.operands:
        if not access.promotable:
            continue
        value = main.operands[access.operand]
        tensor_type = ir.RankedTensorType(value.type)
        if not tensor_type.has_static_shape:
            raise CompilationError(f"kernel {plan.name}: operand {access.operand} tile is not static: {tensor_type}")
        with main.location:
            with ir.InsertionPoint.at_block_begin(body):
                alloc = bufferization.AllocTensorOp(tensor_type, [], memory_space=space).result
            with ir.InsertionPoint(main):
                copied = linalg.copy(value, outs=[alloc])
        copied.owner.attributes[COPY_TAG] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64, fn.context), count)
        main.operands[access.operand] = copied
        shapes.append(tuple(tensor_type.shape))
        count += 1
    return shapes


def schedule(fn: ir.Operation, plan: KernelPlan, config: GpuConfig, shape: LaunchShape, gpu_mapping: bool) -> None:
    """Tiles kernel function `fn` (tensors) according to `config`; see the module docstring."""
    where = f"kernel {plan.name} ({plan.kind}, {config})"
    apply_script(fn, stage1(plan, config, shape), f"{where}: block tiling")
    if config.promote_shared:
        copy_shapes = insert_shared_copies(fn, plan, gpu_mapping)
        if not copy_shapes:
            raise CompilationError(f"{where}: promote_shared found no operand to promote")
        apply_script(fn, stage2(plan, config, shape, copy_shapes), f"{where}: thread tiling")
