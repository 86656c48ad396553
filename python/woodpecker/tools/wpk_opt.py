"""`wpk-opt`: an mlir-opt for Woodpecker (upstream MLIR passes plus the `wpk` dialect and passes).

    wpk-opt [options] [input.mlir | -]        (default: stdin)
    wpk-opt --import-onnx model.onnx [--input-shape x=1x3x224x224] [passes]

Passes are given as `--pass-pipeline='builtin.module(...)'` or as individual
flags appended in command-line order: `--wpk-verify`, `--wpk-lower-to-linalg`,
the aliases (`--wpk-lower`, `--wpk-graph-opt`), and any upstream pass
`--NAME[=OPTIONS]` (e.g. `--canonicalize`, `--convert-linalg-to-loops`).
`-O0`/`-O1`/`-O2` insert the graph optimization pipeline of that level (as
`woodpecker.compile(opt_level=N)` runs it) at their place among the pass flags.
`--wpk-apply-schedule[=config.json]` schedules the kernels of a linalg module
(woodpecker/targets/schedule_pass.py); `--wpk-print-schedules` and
`--wpk-schedule-stage=schedule|nvvm` are options of every such pass of the pipeline.
Like mlir-opt, long options may be spelled with one dash (`-split-input-file`).

Behaviour follows mlir-opt: diagnostics are printed to stderr as
`file:line:col: error: msg` with the source line, the exit status is 1 on any
error, and nothing is written to an `-o` file unless everything succeeded.
With `--split-input-file` every chunk (separated by `// -----` lines) is parsed
in a fresh context; line numbers in diagnostics are those of the whole file,
and the outputs are joined with `// -----`. With `--verify-diagnostics` the
exit status reflects only whether the diagnostics matched the `expected-*`
comments; a chunk that produced an error prints no IR (mlir-opt does the same),
the other chunks print theirs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from mlir import ir
from mlir.passmanager import PassManager

from woodpecker.dialect import create_context
from woodpecker.errors import WoodpeckerError
from woodpecker.passes import GRAPH_PIPELINES, OPT_LEVEL_PIPELINES, PassChecks, build_pass_manager, wpk_passes
from woodpecker.tools.diagnostics import (
    Diag,
    DiagnosticCollector,
    DiagnosticVerifier,
    SourceBuffers,
    SourcePos,
    format_diagnostic,
    from_mlir_error,
)
from woodpecker.tools.input_limits import InputLimits, check_input_file, nesting_overflow, read_bounded
from woodpecker.verify import verify_module

TOOL = "wpk-opt"
SPLIT_MARKER = "// -----"
STDIN_NAME = "<stdin>"
_MULTI_OP_ERROR = "source must contain a single top-level operation"
_OPT_LEVEL = re.compile(r"-O(\d+)")

# Tool options (long names without dashes) -> whether they take a value. Every
# other `--NAME[=...]` on the command line is a pass flag.
_TOOL_OPTIONS: dict[str, bool] = {
    "o": True,
    "import-onnx": False,
    "input-shape": True,
    "pass-pipeline": True,
    "split-input-file": False,
    "verify-diagnostics": False,
    "mlir-print-ir-after-all": False,
    "mlir-print-debuginfo": False,
    "mlir-print-op-generic": False,
    "mlir-elide-elementsattrs-if-larger": True,
    "mlir-elide-resource-strings-if-larger": True,
    "mlir-timing": False,
    "list-passes": False,
    "version": False,
    "allow-unregistered-dialect": False,
    "wpk-print-schedules": False,
    "wpk-schedule-stage": True,
    "h": False,
    "help": False,
}


class UsageError(WoodpeckerError):
    """Bad command-line usage."""


@dataclass
class Options:
    """Parsed command line."""

    input: str = "-"
    output: str | None = None
    import_onnx: bool = False
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    pipeline: str = ""
    split_input_file: bool = False
    verify_diagnostics: bool = False
    print_ir_after_all: bool = False
    print_debuginfo: bool = False
    print_generic: bool = False
    elide_elements: int | None = None
    elide_resources: int | None = None
    timing: bool = False
    list_passes: bool = False
    version: bool = False
    allow_unregistered: bool = False
    limits: InputLimits = field(default_factory=InputLimits)

    def print_kwargs(self) -> dict[str, object]:
        """Keyword arguments of Operation.print/get_asm for the printing flags."""
        # The bindings use the elements limit for resources too unless told otherwise;
        # mlir-opt keeps the two independent.
        resources = self.elide_resources
        if resources is None and self.elide_elements is not None:
            resources = 2**62
        return {
            "large_elements_limit": self.elide_elements,
            "large_resource_limit": resources,
            "enable_debug_info": self.print_debuginfo,
            "print_generic_op_form": self.print_generic,
        }


def _arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=TOOL,
        description="MLIR modular optimizer driver with the Woodpecker (wpk) dialect and passes.",
        epilog="Pass flags: -O0/-O1/-O2 (graph optimization levels), --wpk-graph-opt, --wpk-fold-constants, "
        "--wpk-fold-batchnorm, --wpk-fuse, --wpk-cleanup, --wpk-verify, --wpk-lower-to-linalg, --wpk-lower, "
        "--wpk-outline-weights, --wpk-apply-schedule[=CONFIG.json], and every upstream pass as --NAME[=OPTIONS] "
        "(in command-line order). See --list-passes.",
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    def flag(name: str, **kwargs: object) -> None:
        spellings = [f"--{name}", f"-{name}"] if len(name) > 1 else [f"-{name}"]
        parser.add_argument(*spellings, **kwargs)  # type: ignore[arg-type]

    parser.add_argument("input", nargs="?", default="-", help="input file ('-' for stdin, the default)")
    flag("o", dest="output", metavar="FILE", help="output file (default: stdout)")
    flag("import-onnx", action="store_true", help="the input is an ONNX model; import it to wpk first")
    flag(
        "input-shape",
        action="append",
        default=[],
        metavar="NAME=D0xD1x...",
        help="static shape for an ONNX graph input (repeatable; with --import-onnx)",
    )
    flag("pass-pipeline", default=None, metavar="PIPELINE", help="textual pipeline: 'builtin.module(...)'")
    flag("split-input-file", action="store_true", help=f"process chunks separated by '{SPLIT_MARKER}'")
    flag("verify-diagnostics", action="store_true", help="check diagnostics against expected-* comments")
    flag("mlir-print-ir-after-all", action="store_true", help="print the IR after every pass (stderr)")
    flag("mlir-print-debuginfo", action="store_true", help="print locations")
    flag("mlir-print-op-generic", action="store_true", help="print ops in the generic form")
    flag("mlir-elide-elementsattrs-if-larger", type=int, metavar="N", help="elide elements attrs > N")
    flag("mlir-elide-resource-strings-if-larger", type=int, metavar="N", help="elide resources > N chars")
    flag("mlir-timing", action="store_true", help="print pass timing (stderr)")
    flag("list-passes", action="store_true", help="list the wpk passes and pipeline aliases")
    flag("version", action="store_true", help="print the versions of wpk-opt and of the MLIR it uses")
    flag("allow-unregistered-dialect", action="store_true", help="accept ops of unregistered dialects")
    flag(
        "wpk-print-schedules",
        action="store_true",
        help="--wpk-apply-schedule prints each kernel's template, configuration and search space (stderr)",
    )
    flag(
        "wpk-schedule-stage",
        choices=("schedule", "nvvm"),
        help="target cuda: print the device module after the schedules (default) or lowered to NVVM",
    )
    return parser


SCHEDULE_PASS = "wpk-apply-schedule"


def add_schedule_options(elements: list[str], options: list[str], pipeline_given: bool) -> list[str]:
    """`elements` with `options` appended to those of every wpk-apply-schedule element."""
    if not options:
        return elements
    flags = ", ".join("--wpk-print-schedules" if o == "print-schedules" else "--wpk-schedule-stage" for o in options)
    if pipeline_given:
        raise UsageError(
            f"{flags}: with --pass-pipeline, give them as options: {SCHEDULE_PASS}{{... {' '.join(options)}}}"
        )
    out = []
    found = False
    for element in elements:
        name, brace, rest = element.partition("{")
        if name == SCHEDULE_PASS:
            found = True
            current = rest[:-1] if brace else ""
            element = f"{SCHEDULE_PASS}{{{' '.join([current, *options]).strip()}}}"
        out.append(element)
    if not found:
        raise UsageError(f"{flags} needs --{SCHEDULE_PASS}")
    return out


def split_pass_flags(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(tool arguments, pipeline elements from pass flags, in order)."""
    tool_args: list[str] = []
    elements: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            tool_args.extend(argv[i - 1 :])
            break
        if not arg.startswith("-") or arg == "-":
            tool_args.append(arg)
            continue
        level = _OPT_LEVEL.fullmatch(arg)
        if level is not None:
            if int(level.group(1)) not in OPT_LEVEL_PIPELINES:
                raise UsageError(f"invalid optimization level '{arg}'; use one of -O0, -O1, -O2")
            elements.extend(e for e in OPT_LEVEL_PIPELINES[int(level.group(1))].split(",") if e)
            continue
        key, eq, value = arg.lstrip("-").partition("=")
        if key in _TOOL_OPTIONS:
            tool_args.append(arg)
            if _TOOL_OPTIONS[key] and not eq and i < len(argv):
                tool_args.append(argv[i])
                i += 1
            continue
        if not key:
            raise UsageError(f"invalid argument '{arg}'")
        elements.append(f"{key}{{{value}}}" if eq else key)
    return tool_args, elements


def parse_input_shape(spec: str) -> tuple[str, list[int]]:
    """'x=1x3x224x224' -> ('x', [1, 3, 224, 224])."""
    name, eq, dims = spec.rpartition("=")
    try:
        shape = [int(d) for d in dims.split("x")] if dims else []
    except ValueError:
        shape = [-1]
    if not eq or not name or any(d < 0 for d in shape):
        raise UsageError(f"invalid --input-shape '{spec}': expected NAME=D0xD1x... (e.g. input=1x3x224x224)")
    return name, shape


def parse_args(argv: Sequence[str]) -> Options:
    tool_args, elements = split_pass_flags(argv)
    ns = _arg_parser().parse_args(tool_args)
    if ns.pass_pipeline is not None and elements:
        raise UsageError("'--pass-pipeline' option can't be used with individual pass options or -O levels")
    schedule_options = (["print-schedules"] if ns.wpk_print_schedules else []) + (
        [f"stage={ns.wpk_schedule_stage}"] if ns.wpk_schedule_stage else []
    )
    elements = add_schedule_options(elements, schedule_options, ns.pass_pipeline is not None)
    pipeline = ns.pass_pipeline or (f"builtin.module({','.join(elements)})" if elements else "")
    shapes = dict(parse_input_shape(s) for s in ns.input_shape)
    if shapes and not ns.import_onnx:
        raise UsageError("--input-shape needs --import-onnx")
    if ns.import_onnx and ns.split_input_file:
        raise UsageError("--split-input-file cannot be used with --import-onnx")
    return Options(
        input=ns.input,
        output=ns.output,
        import_onnx=ns.import_onnx,
        input_shapes=shapes,
        pipeline=pipeline,
        split_input_file=ns.split_input_file,
        verify_diagnostics=ns.verify_diagnostics,
        print_ir_after_all=ns.mlir_print_ir_after_all,
        print_debuginfo=ns.mlir_print_debuginfo,
        print_generic=ns.mlir_print_op_generic,
        elide_elements=ns.mlir_elide_elementsattrs_if_larger,
        elide_resources=ns.mlir_elide_resource_strings_if_larger,
        timing=ns.mlir_timing,
        list_passes=ns.list_passes,
        version=ns.version,
        allow_unregistered=ns.allow_unregistered_dialect,
    )


def list_passes_text() -> str:
    lines = ["Woodpecker passes:"]
    passes = wpk_passes()
    width = max(len(n) for n in [*passes, *GRAPH_PIPELINES]) + 4
    for name, info in sorted(passes.items()):
        reason = info.unavailable_reason()
        suffix = f" [unavailable: {reason}]" if reason else ""
        lines.append(f"  --{name.ljust(width)}{info.summary}{suffix}")
    lines.append("Pipeline aliases:")
    for name, pipeline in sorted(GRAPH_PIPELINES.items()):
        lines.append(f"  --{name.ljust(width)}{pipeline}")
    lines.append("Optimization levels (graph passes, as woodpecker.compile(opt_level=N)):")
    for level, pipeline in sorted(OPT_LEVEL_PIPELINES.items()):
        lines.append(f"  -O{str(level).ljust(width)}{pipeline or '(none)'}")
    lines.append(
        "All upstream mlir-opt passes are accepted too, as --NAME[=OPTIONS] flags or inside "
        "--pass-pipeline='builtin.module(...)' (see `mlir-opt --help`)."
    )
    return "\n".join(lines) + "\n"


def _distribution_version(module: str) -> str:
    """'name version' of the installed distribution that provides the import package `module`."""
    names = metadata.packages_distributions().get(module) or [module]
    try:
        return f"{names[0]} {metadata.version(names[0])}"
    except metadata.PackageNotFoundError:
        return f"{module} (version unknown)"


def version_text() -> str:
    """`wpk-opt --version`: Woodpecker's version and that of the MLIR Python bindings."""
    return f"{TOOL}: {_distribution_version('woodpecker')}, MLIR Python bindings {_distribution_version('mlir')}\n"


# ----------------------------------------------------------------------------
# Processing.


@dataclass
class ChunkResult:
    """What one buffer (or split chunk) produced."""

    output: str = ""
    diagnostics: list[Diag] = field(default_factory=list)
    failed: bool = False


@dataclass
class Chunk:
    text: str  # padded with blank lines so that line numbers are those of the file
    first_line: int


def split_chunks(text: str, split: bool) -> list[Chunk]:
    if not split:
        return [Chunk(text, 1)]
    chunks: list[Chunk] = []
    lines = text.split("\n")
    start = 0
    for i, line in enumerate([*lines, None]):
        if line is None or line.strip() == SPLIT_MARKER:
            body = "\n".join(lines[start:i])
            chunks.append(Chunk("\n" * start + body, start + 1))
            start = i + 1
    return chunks


def parse_source(
    text: str, name: str, context: ir.Context, path: str | None = None
) -> tuple[ir.Operation, object, dict[str, str]]:
    """Parses `text` as mlir-opt does: one top-level op, or several wrapped in an implicit module.

    `path`: the file `text` was read from unchanged, if any. Returns (module op, the object
    owning it, file renames for diagnostics).
    """
    try:
        op = ir.Operation.parse(text, source_name=name, context=context)
    except ir.MLIRError as err:
        diags = err.error_diagnostics
        if not (len(diags) == 1 and _MULTI_OP_ERROR in diags[0].message):
            raise
        # Several top-level ops: only Module.parse/parseFile add the implicit module.
        # parseFile names the locations after the file; Module.parse (stdin, split
        # chunks) names the buffer "-", which diagnostics rename.
        if path is not None:
            module = ir.Module.parseFile(path, context)
            return module.operation, module, {}
        module = ir.Module.parse(text, context)
        return module.operation, module, {"-": name}
    op = op.operation
    if op.name == "builtin.module":
        return op, op, {}
    module = ir.Module.create(loc=ir.Location.file(name, 0, 0, context=context))
    module.body.append(op)
    return module.operation, module, {}


def verify_loaded(op: ir.Operation) -> bool:
    """Verifies the IR as read, as mlir-opt does before any pass: MLIR's verifier (raises
    MLIRError with its diagnostics) and the Woodpecker verifier (wpk-verify's checks: shapes
    and attributes by the op semantics), whose failures are emitted as error diagnostics at
    the ops' locations. Returns whether the IR is valid."""
    op.verify()
    failures = verify_module(op)
    with op.context:
        for failure in failures:
            failure.location.emit_error(failure.text())
    return not failures


# load(context) -> (module op, the object owning it, file renames for diagnostics)
Loader = Callable[[ir.Context], tuple[ir.Operation, object, dict[str, str]]]


@dataclass
class Driver:
    """Runs the parse -> passes -> print flow of wpk-opt."""

    opts: Options
    sources: SourceBuffers = field(default_factory=SourceBuffers)

    def new_context(self) -> ir.Context:
        context = create_context()
        context.allow_unregistered_dialects = self.opts.allow_unregistered
        if SCHEDULE_PASS in self.opts.pipeline:
            # Its CUDA stages run pass pipelines that load dialects (NVVM, LLVM) from within
            # the pass, which a multi-threaded context forbids.
            context.enable_multithreading(False)
        return context

    def pass_manager(self, context: ir.Context, collector: DiagnosticCollector | None = None) -> PassManager | None:
        """The pipeline's pass manager; the wpk passes verify the module after they ran and
        report a run that finds nothing to act on as a warning into `collector`."""
        if not self.opts.pipeline:
            return None

        def warn(loc: ir.Location, message: str) -> None:
            if collector is not None:
                collector.diagnostics.append(Diag.at("warning", loc, message, collector.rename))

        pm = build_pass_manager(self.opts.pipeline, context, checks=PassChecks(verify_each=True, warn=warn))
        if self.opts.print_ir_after_all:
            kwargs = self.opts.print_kwargs()
            pm.enable_ir_printing(
                print_after_all=True,
                large_elements_limit=kwargs["large_elements_limit"],
                large_resource_limit=kwargs["large_resource_limit"],
                enable_debug_info=self.opts.print_debuginfo,
                print_generic_op_form=self.opts.print_generic,
            )
        if self.opts.timing:
            pm.enable_timing()
        return pm

    def run_chunk(self, load: Loader, name: str) -> ChunkResult:
        """Loads the IR with `load`, runs the passes and prints it (all in a fresh context)."""
        result = ChunkResult()
        context = self.new_context()
        collector = DiagnosticCollector()
        handler = context.attach_diagnostic_handler(collector)
        try:
            renames: dict[str, str] = {}
            try:
                op, _owner, renames = load(context)
                collector.rename.update(renames)
                if verify_loaded(op):
                    pm = self.pass_manager(context, collector)
                    if pm is not None:
                        sys.stdout.flush()
                        pm.run(op)
                    result.output = op.get_asm(**self.opts.print_kwargs()) + "\n"
            except ir.MLIRError as err:
                result.failed = True
                result.diagnostics.extend(from_mlir_error(err, renames))
                if not err.error_diagnostics and not self.opts.verify_diagnostics:
                    result.diagnostics.append(Diag.tool_error(f"{name}: {err}"))
            except WoodpeckerError as err:
                result.failed = True
                result.diagnostics.append(Diag.tool_error(str(err)))
        finally:
            handler.detach()
        # Diagnostics the MLIRError did not carry (warnings, remarks, errors emitted
        # outside a parse or a pass run) came through the handler.
        result.diagnostics[:0] = collector.diagnostics
        if any(d.severity == "error" for d in collector.diagnostics):
            result.failed = True
        if result.failed:
            result.output = ""
        return result

    def run_text(self, text: str, name: str) -> tuple[str, bool]:
        """Processes an MLIR buffer; returns (output, success)."""
        self.sources.add(name, text)
        outputs: list[str] = []
        ok = True
        # The unsplit text of a named file can be re-read by path (see parse_source).
        path = name if name != STDIN_NAME and not self.opts.split_input_file else None
        for chunk in split_chunks(text, self.opts.split_input_file):
            overflow = nesting_overflow(chunk.text, self.opts.limits.max_nesting)
            if overflow is None:
                result = self.run_chunk(lambda ctx, c=chunk: parse_source(c.text, name, ctx, path), name)
            else:
                pos = SourcePos(name, overflow.line, overflow.col)
                result = ChunkResult(diagnostics=[Diag("error", overflow.message(), pos)], failed=True)
            outputs.append(result.output)
            if self.opts.verify_diagnostics:
                verifier = DiagnosticVerifier.from_text(name, chunk.text, self.sources)
                verifier.process_all(result.diagnostics)
                messages = verifier.finish()
                for message in messages:
                    print(message, file=sys.stderr)
                ok = ok and not messages
            else:
                for diag in result.diagnostics:
                    print(format_diagnostic(diag, self.sources), file=sys.stderr)
                ok = ok and not result.failed
        sep = SPLIT_MARKER + "\n"
        return sep.join(outputs), ok

    def run_onnx(self, path: str) -> tuple[str, bool]:
        try:
            from woodpecker.importer import import_onnx
        except ImportError as err:
            raise UsageError(f"--import-onnx is unavailable: cannot import woodpecker.importer ({err})") from err

        def load(context: ir.Context) -> tuple[ir.Operation, object, dict[str, str]]:
            module = import_onnx(path, input_shapes=self.opts.input_shapes or None, context=context)
            return module.operation, module, {}

        result = self.run_chunk(load, path)
        for diag in result.diagnostics:
            print(format_diagnostic(diag, self.sources), file=sys.stderr)
        return result.output, not result.failed


def _write_output(path: str | None, text: str) -> None:
    if path is None or path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot write output file '{path}': {err.strerror or err}") from err


def run(opts: Options) -> int:
    if opts.list_passes:
        _write_output(None, list_passes_text())
        return 0
    if opts.version:
        _write_output(None, version_text())
        return 0
    driver = Driver(opts)
    # Reject a bad pipeline before reading anything, as mlir-opt does.
    if opts.pipeline:
        build_pass_manager(opts.pipeline, driver.new_context())
    if opts.import_onnx:
        if opts.input == "-":
            data = read_bounded("-", opts.limits, binary=True)
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "stdin.onnx")
                Path(path).write_bytes(data)  # type: ignore[arg-type]
                output, ok = driver.run_onnx(path)
        else:
            check_input_file(opts.input, opts.limits)
            output, ok = driver.run_onnx(opts.input)
    else:
        text = read_bounded(opts.input, opts.limits)
        name = STDIN_NAME if opts.input == "-" else opts.input
        output, ok = driver.run_text(text, name)  # type: ignore[arg-type]
    if ok or opts.output in (None, "-"):
        _write_output(opts.output, output)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `wpk-opt` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        opts = parse_args(args)
    except WoodpeckerError as err:
        print(f"{TOOL}: error: {err}", file=sys.stderr)
        return 1
    except SystemExit as exit_:  # argparse: --help (0) or a usage error, already printed
        return 0 if exit_.code in (0, None) else 1
    try:
        return run(opts)
    except WoodpeckerError as err:
        print(f"{TOOL}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
