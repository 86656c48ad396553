"""Scheduled kernel functions (tensors) -> gpu.launch -> outlined gpu.func -> NVVM -> PTX.

One device module holds every kernel function; each becomes one `gpu.module` with one
`gpu.func` (`<function>_kernel`), serialized to PTX by `gpu-module-to-binary{format=isa}`.
Kernels take bare pointers (`use-bare-ptr-memref-call-conv`), shared memory is one dynamic
shared buffer (`gpu.dynamic_shared_memory` + `memref.view`), and the launch geometry and the
argument order are read from each `gpu.launch_func` before the host code is dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlir import ir
from mlir.dialects import arith, gpu, memref
from mlir.passmanager import PassManager

from woodpecker.errors import CompilationError
from woodpecker.gpu.arch import GpuArch

BUFFERIZE = (
    "builtin.module(one-shot-bufferize{bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map},canonicalize,cse)"
)
OUTLINE = (
    "builtin.module(canonicalize,cse,func.func(convert-linalg-to-loops),canonicalize,cse,"
    "gpu-launch-sink-index-computations,gpu-kernel-outlining,canonicalize,cse)"
)
# Per-thread temporaries (rare: a chain that cannot update its output in place) up to this
# size go to the stack (local memory, registers after SROA); larger ones are an error.
MAX_PRIVATE_BYTES = 4096
TO_NVVM = (
    "builtin.module(nvvm-attach-target{{chip={chip} features={features} O=3}},"
    "convert-nvgpu-to-nvvm,convert-vector-to-scf,convert-scf-to-cf,convert-nvvm-to-llvm,"
    "expand-strided-metadata,lower-affine,convert-arith-to-llvm,convert-index-to-llvm,canonicalize,cse,"
    "gpu.module(convert-gpu-to-nvvm{{use-bare-ptr-memref-call-conv=1}},canonicalize,cse,"
    "reconcile-unrealized-casts))"
)
TO_ISA = "builtin.module(gpu-module-to-binary{format=isa})"
SHARED_ALIGN = 16


def run_pipeline(module: ir.Module | ir.Operation, pipeline: str, what: str) -> None:
    op = module.operation
    try:
        PassManager.parse(pipeline, context=op.context).run(op)
    except ir.MLIRError as err:
        raise CompilationError(f"{what} failed: {err}") from None


def _ops(parent: ir.Operation, name: str) -> list[ir.Operation]:
    found: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == name:
            found.append(op)
        return ir.WalkResult.ADVANCE

    parent.walk(visit, ir.WalkOrder.PRE_ORDER)
    return found


def top_ops(module: ir.Module, name: str) -> list[ir.Operation]:
    return [op.operation for op in module.body.operations if op.operation.name == name]


def symbol(op: ir.Operation) -> str:
    return ir.StringAttr(op.attributes["sym_name"]).value


def _constant_index(value: ir.Value, what: str) -> int:
    owner = value.owner
    if isinstance(owner, ir.Block) or owner.name != "arith.constant":
        raise CompilationError(f"{what} is not a constant")
    return ir.IntegerAttr(owner.attributes["value"]).value


@dataclass
class Launch:
    """What a host function's `gpu.launch_func` says."""

    module: str  # gpu.module symbol = kernel symbol
    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    arg_positions: list[int]  # host function argument passed as each kernel parameter


def sink_constants_into_launch(fn: ir.Operation) -> None:
    """Moves the constant buffers a launch reads (`memref.get_global` of bufferized dense
    constants) into the launch body, so that outlining copies their globals into the kernel's
    gpu.module instead of passing host memory as a parameter."""
    launches = _ops(fn, "gpu.launch")
    if len(launches) != 1:
        return
    body = launches[0].regions[0].blocks[0]
    for op in list(fn.regions[0].blocks[0].operations):
        if op.operation.name == "memref.get_global":
            op.operation.move_before(body.operations[0])


HOST_OPS = frozenset({"arith.constant", "gpu.launch_func", "func.return"})


def read_launch(fn: ir.Operation) -> Launch:
    """The launch of a host function, which must do nothing else (it is discarded)."""
    name = symbol(fn)
    leftovers = sorted({op.operation.name for op in fn.regions[0].blocks[0].operations} - HOST_OPS)
    if leftovers:
        raise CompilationError(f"kernel {name}: work left outside the GPU launch: {', '.join(leftovers)}")
    launches = _ops(fn, "gpu.launch_func")
    if len(launches) != 1:
        raise CompilationError(f"kernel {name}: expected one gpu.launch_func after outlining, got {len(launches)}")
    launch = launches[0].opview
    positions = []
    for operand in launch.kernelOperands:
        owner = operand.owner
        if not isinstance(owner, ir.Block) or owner.owner != fn:
            raise CompilationError(
                f"kernel {name}: the launch needs a buffer that is not a graph buffer ({operand.type}); "
                "a temporary the schedule could not keep in place"
            )
        positions.append(ir.BlockArgument(operand).arg_number)
    kernel = ir.SymbolRefAttr(launch.kernel)
    dims = [
        _constant_index(v, f"kernel {name}: launch dimension")
        for v in (
            launch.gridSizeX,
            launch.gridSizeY,
            launch.gridSizeZ,
            launch.blockSizeX,
            launch.blockSizeY,
            launch.blockSizeZ,
        )
    ]
    path = list(kernel.value)
    return Launch(
        module=path[0],
        kernel=path[-1],
        grid=(dims[0], dims[1], dims[2]),
        block=(dims[3], dims[4], dims[5]),
        arg_positions=positions,
    )


def _is_workgroup(memref_type: ir.Type) -> bool:
    space = ir.MemRefType(memref_type).memory_space
    return space is not None and "workgroup" in str(space)


def to_dynamic_shared_memory(gpu_func: ir.Operation) -> int:
    """Replaces the workgroup `memref.alloc`s of a gpu.func by views of its dynamic shared
    memory; returns the bytes to request at launch."""
    allocs = [op for op in _ops(gpu_func, "memref.alloc") if _is_workgroup(op.results[0].type)]
    if not allocs:
        return 0
    entry = gpu_func.regions[0].blocks[0]
    ctx = gpu_func.context
    i8 = ir.IntegerType.get_signless(8, ctx)
    space = ir.MemRefType(allocs[0].results[0].type).memory_space
    offset = 0
    with ir.InsertionPoint.at_block_begin(entry), gpu_func.location:
        base = gpu.DynamicSharedMemoryOp(
            ir.MemRefType.get([ir.ShapedType.get_dynamic_size()], i8, memory_space=space)
        ).result
        for alloc in allocs:
            memref_type = ir.MemRefType(alloc.results[0].type)
            identity = ir.AffineMap.get_identity(memref_type.rank, gpu_func.context)
            if not memref_type.has_static_shape or memref_type.affine_map != identity:
                raise CompilationError(f"shared tile {memref_type} is not a static dense buffer")
            shift = arith.ConstantOp(ir.IndexType.get(ctx), offset).result
            view = memref.ViewOp(memref_type, base, shift, []).result
            alloc.results[0].replace_all_uses_with(view)
            offset += -(-math.prod(memref_type.shape) * (memref_type.element_type.width // 8) // SHARED_ALIGN) * (
                SHARED_ALIGN
            )
    for alloc in allocs:
        alloc.erase()
    return offset


def private_to_stack(gpu_func: ir.Operation, name: str) -> None:
    """Turns the remaining (per-thread) `memref.alloc`s of a gpu.func into `memref.alloca`s."""
    for alloc in _ops(gpu_func, "memref.alloc"):
        memref_type = ir.MemRefType(alloc.results[0].type)
        size = math.prod(memref_type.shape) * (memref_type.element_type.width // 8)
        if not memref_type.has_static_shape or size > MAX_PRIVATE_BYTES:
            raise CompilationError(
                f"kernel {name}: needs a per-thread temporary {memref_type} larger than {MAX_PRIVATE_BYTES} bytes"
            )
        with ir.InsertionPoint(alloc), alloc.location:
            alignment = alloc.attributes.get("alignment", None)
            alloca = memref.AllocaOp(memref_type, [], [], alignment=alignment)
        alloc.results[0].replace_all_uses_with(alloca.result)
        alloc.erase()
    for dealloc in _ops(gpu_func, "memref.dealloc"):
        dealloc.erase()


CONTRACTIBLE = frozenset({"arith.mulf", "arith.addf", "arith.subf", "arith.negf"})


def set_kernel_attributes(gpu_func: ir.Operation) -> None:
    """Marks every buffer parameter `llvm.noalias` and lets multiply-adds contract to FMA.

    No two parameters of a kernel alias where one is written: the output buffer of a kernel
    is never one of its inputs (inputs may repeat, read only). `contract` on the float ops
    gives `fma.rn.f32` like nvcc's default `--fmad=true`.
    """
    ctx = gpu_func.context
    fn_type = ir.FunctionType(ir.TypeAttr(gpu_func.attributes["function_type"]).value)
    noalias = ir.DictAttr.get({"llvm.noalias": ir.UnitAttr.get(ctx)}, ctx)
    empty = ir.DictAttr.get({}, ctx)
    gpu_func.attributes["arg_attrs"] = ir.ArrayAttr.get(
        [noalias if isinstance(t, ir.MemRefType) else empty for t in fn_type.inputs], ctx
    )
    contract = ir.Attribute.parse("#arith.fastmath<contract>", ctx)

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name in CONTRACTIBLE:
            op.attributes["fastmath"] = contract
        return ir.WalkResult.ADVANCE

    gpu_func.walk(visit, ir.WalkOrder.PRE_ORDER)


def check_no_heap(gpu_func: ir.Operation, name: str) -> None:
    for op_name in ("memref.alloc", "memref.copy", "memref.dealloc"):
        found = _ops(gpu_func, op_name)
        if found:
            raise CompilationError(
                f"kernel {name}: {op_name} remains in the kernel at {found[0].location}; "
                "the schedule needs a temporary buffer it cannot keep in registers"
            )


def external_dynamic_shared(module: ir.Module) -> None:
    """Gives `__dynamic_shmem__*` external linkage so that PTX declares
    `.extern .shared .b8 __dynamic_shmem__0[]` (internal zero-size globals get demoted to
    1-byte static shared variables by the NVPTX back end)."""
    external = ir.Attribute.parse("#llvm.linkage<external>", module.context)
    for gpu_module in top_ops(module, "gpu.module"):
        for op in gpu_module.regions[0].blocks[0].operations:
            op = op.operation
            if op.name == "llvm.mlir.global" and symbol(op).startswith("__dynamic_shmem__"):
                op.attributes["linkage"] = external


def to_nvvm(module: ir.Module, arch: GpuArch) -> None:
    run_pipeline(module, TO_NVVM.format(chip=arch.chip, features=arch.ptx_features), "lowering to NVVM")
    external_dynamic_shared(module)


def to_ptx(module: ir.Module) -> dict[str, str]:
    """Serializes every gpu.module to PTX; returns {gpu.module symbol: PTX text}."""
    run_pipeline(module, TO_ISA, "PTX generation (gpu-module-to-binary)")
    ptx: dict[str, str] = {}
    for binary in top_ops(module, "gpu.binary"):
        objects = ir.ArrayAttr(binary.attributes["objects"])
        ptx[symbol(binary)] = bytes(gpu.ObjectAttr(objects[0]).object).decode()
    return ptx
