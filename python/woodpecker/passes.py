"""Registry of Woodpecker's Python passes and a pass-pipeline builder that mixes them with upstream ones.

Woodpecker passes are Python callables `(op, pass_) -> None` run through
`PassManager.add(callable)`; the MLIR bindings cannot register them by name, so
a textual pipeline such as

    builtin.module(wpk-verify,wpk-lower-to-linalg,canonicalize,func.func(cse))

is split here: top-level `wpk-*` elements become Python passes, every other
element is handed to MLIR's own pipeline parser (`PassManager.add(str)`), in order.
Pass modules are imported only when a pipeline uses them, so a missing or broken
module does not break tools that merely list the passes.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mlir import ir
from mlir.passmanager import PassManager

from woodpecker.errors import CompilationError, WoodpeckerError

PassCallable = Callable[[ir.Operation, Any], None]
WarningSink = Callable[[ir.Location, str], None]
"""Receives a warning at a location (the bindings cannot emit MLIR warnings)."""


# Graph optimization per opt level (compile(opt_level=N) and wpk-opt -ON): 0 none,
# 1 folding, 2 folding and fusion (transposes into matmuls first). Each ends with dead code and duplicate removal.
OPT_LEVEL_PIPELINES: dict[int, str] = {
    0: "",
    1: "wpk-fold-constants,wpk-fold-batchnorm,wpk-cleanup",
    2: (
        "wpk-fold-constants,wpk-fold-batchnorm,wpk-fold-transpose,wpk-fuse-attention,"
        "wpk-fuse-layernorm,wpk-fuse,wpk-cleanup"
    ),
}

# Named pipelines, usable as `--NAME` in wpk-opt and as an element of a pipeline.
GRAPH_PIPELINES: dict[str, str] = {
    "wpk-lower": "builtin.module(wpk-verify,wpk-lower-to-linalg,canonicalize,cse)",
    "wpk-graph-opt": f"builtin.module({OPT_LEVEL_PIPELINES[2]})",
}

WPK_PREFIX = "wpk-"


class PassPipelineError(WoodpeckerError, ValueError):
    """A pass pipeline names an unknown pass, has bad syntax or misuses a wpk pass."""


class GraphContextProvider(Protocol):
    """Gives a graph pass the GraphContext (woodpecker.graph.context) of the module it runs on."""

    def get(self, root: ir.Operation) -> Any: ...


def _lazy_graph_context() -> GraphContextProvider:
    from woodpecker.graph.context import LazyGraphContext

    return LazyGraphContext()


# The channel layout of the convolution regions (compile(layout=...)): "auto" runs
# wpk-convert-layout (block: the host's vector width; the convs it pays for) at the
# LAYOUT_AUTO_LEVELS, "nchw" never, "blocked" at every level on every conv (force), "blocked<N>"
# the same with blocks of N. The targets in NCHW_ONLY_TARGETS have no blocked kernels: "auto"
# is "nchw" there (layout_for_target).
LAYOUT_PASS = "wpk-convert-layout"
LAYOUT_AUTO_LEVELS: tuple[int, ...] = (2,)
NCHW_ONLY_TARGETS: tuple[str, ...] = ("cuda",)


def layout_for_target(layout: str, target: str) -> str:
    """The layout `layout` means on `target` ("auto" is "nchw" on an NCHW-only target, where a
    blocked layout is an error)."""
    if target not in NCHW_ONLY_TARGETS:
        return layout
    if layout in ("auto", "nchw"):
        return "nchw"
    raise PassPipelineError(
        f"layout {layout!r}: the {target} target computes convolutions in NCHW only; use layout 'auto' or 'nchw'"
    )


def layout_element(layout: str, level: int, regions: Mapping[str, str] | None = None) -> str:
    """The wpk-convert-layout element of the pipeline for `layout` at `level` ('' for none);
    `regions`: region name -> "nchw" or a block size (its `regions=` option)."""
    if layout == "nchw" or (layout == "auto" and level not in LAYOUT_AUTO_LEVELS):
        return ""
    chosen = ",".join(f"{name}:{choice}" for name, choice in (regions or {}).items())
    if layout == "auto":
        options = []
    elif layout == "blocked":
        options = ["force=true"]
    else:
        block = layout.removeprefix("blocked")
        if not layout.startswith("blocked") or not block.isdigit() or int(block) < 1:
            raise PassPipelineError(f"layout must be auto, nchw, blocked or blocked<N>, got {layout!r}")
        options = [f"block={int(block)}", "force=true"]
    if chosen:
        options.append(f"regions={chosen}")
    return f"{LAYOUT_PASS}{{{' '.join(options)}}}" if options else LAYOUT_PASS


def opt_level_pipeline(level: int, layout: str = "nchw", regions: Mapping[str, str] | None = None) -> str:
    """The graph pipeline of optimization level `level` as bare elements ('' for none), with
    wpk-convert-layout after fusion as `layout` says (layout_element)."""
    if level not in OPT_LEVEL_PIPELINES:
        raise PassPipelineError(f"optimization level must be one of {sorted(OPT_LEVEL_PIPELINES)}, got {level!r}")
    elements = [e for e in OPT_LEVEL_PIPELINES[level].split(",") if e]
    extra = layout_element(layout, level, regions)
    if extra:
        at = elements.index("wpk-cleanup") if "wpk-cleanup" in elements else len(elements)
        elements.insert(at, extra)
    return ",".join(elements)


@dataclass(frozen=True)
class LazyPass:
    """A pass callable `module:attr`, imported on first use.

    `style` "pass": the callable is a pass, `f(op, pass_)`. "function": it is a plain
    transformation `f(op)`; a ValueError it raises becomes an error diagnostic at
    `op`'s location and a pass failure. "graph": like "function", but `f(op, graph)`
    also takes the `GraphContext` (the weight table) of the pipeline run. "factory": the
    pass takes options: `f(options)` (the text inside `name{...}`, None without braces)
    checks them when the pipeline is built (a ValueError rejects the pipeline) and returns
    the transformation `g(op)`; a WoodpeckerError it raises propagates out of the pass run.
    "graph_factory": both, `f(options)` returns `g(op, graph)` (run like a "graph" pass).
    """

    module: str
    attr: str
    style: str = "pass"

    @property
    def takes_options(self) -> bool:
        return self.style in ("factory", "graph_factory")

    def load(self, graph: GraphContextProvider | None = None, options: str | None = None) -> PassCallable:
        """Imports the pass; raises ImportError/AttributeError if it is unavailable.

        The returned callable runs the target with `op`'s context active. `graph`
        provides the GraphContext of "graph" passes (default: decoded from the module);
        `options` are those of a "factory" pass (ValueError if they are invalid).
        """
        target = getattr(importlib.import_module(self.module), self.attr)
        if self.style == "graph_factory":
            configured_graph = target(options)
            provider = graph if graph is not None else _lazy_graph_context()

            def run(op: ir.Operation, pass_: Any) -> None:
                with op.context:
                    try:
                        configured_graph(op, provider.get(op))
                    except ValueError as err:
                        op.location.emit_error(f"{self.attr}: {err}")
                        pass_.signal_pass_failure()

        elif self.style == "factory":
            configured = target(options)

            def run(op: ir.Operation, pass_: Any) -> None:
                with op.context:
                    configured(op)

        elif self.style == "pass":

            def run(op: ir.Operation, pass_: Any) -> None:
                with op.context:
                    target(op, pass_)

        else:
            if self.style == "graph":
                provider = graph if graph is not None else _lazy_graph_context()

                def transform(op: ir.Operation) -> None:
                    target(op, provider.get(op))

            else:
                transform = target

            def run(op: ir.Operation, pass_: Any) -> None:
                with op.context:
                    try:
                        transform(op)
                    except ValueError as err:
                        op.location.emit_error(f"{self.attr}: {err}")
                        pass_.signal_pass_failure()

        run.__name__ = self.attr
        return run

    def __call__(self, op: ir.Operation, pass_: Any) -> None:
        self.load()(op, pass_)


@dataclass(frozen=True)
class PassInfo:
    """A Woodpecker Python pass: its pipeline name, a one-line summary and its callable."""

    name: str
    summary: str
    run: PassCallable
    acts_on: str = "wpk"  # the dialect of the ops it works on
    verb: str = "transform"  # what it does to them, for the warning when there are none

    @property
    def takes_options(self) -> bool:
        return isinstance(self.run, LazyPass) and self.run.takes_options

    def load(
        self, graph: GraphContextProvider | None = None, options: str | None = None, checks: PassChecks | None = None
    ) -> PassCallable:
        """The callable itself, importing it now if it is lazy (raises if unavailable).

        `options`: the text inside `name{...}` of a pass that takes options. `checks`: what
        to check around each run (PassChecks); a CompilationError with a location raised by
        the pass becomes an error diagnostic there and a pass failure in any case."""
        run = self.run.load(graph, options) if isinstance(self.run, LazyPass) else self.run
        return _checked_pass(self, run, checks or PassChecks())

    def unavailable_reason(self) -> str | None:
        """None if the pass can be loaded, else why not."""
        try:
            self.load()
        except (ImportError, AttributeError) as err:
            return f"{type(err).__name__}: {err}"
        return None

    def idle_warning(self) -> str:
        """The warning for a run on IR without ops of its dialect."""
        return f"{self.name}: no {self.acts_on} ops to {self.verb}"

    def finds_work(self, op: ir.Operation) -> bool:
        """Whether `op` holds an op of the dialect this pass works on."""
        prefix = f"{self.acts_on}."
        found = False

        def visit(child: ir.Operation) -> ir.WalkResult:
            nonlocal found
            found = child.name.startswith(prefix)
            return ir.WalkResult.INTERRUPT if found else ir.WalkResult.ADVANCE

        op.walk(visit, ir.WalkOrder.PRE_ORDER)
        return found


@dataclass(frozen=True)
class PassChecks:
    """What the wpk pass wrappers check around each run (wpk-opt turns all of them on).

    `verify_each`: after a pass, run the Woodpecker verifier (wpk-verify: shapes and
    attributes by the op semantics) on the module; MLIR's own verifier runs after every
    pass anyway. `warn`: receives the warning for a pass that finds no ops of its dialect.
    """

    verify_each: bool = False
    warn: WarningSink | None = None


def _checked_pass(info: PassInfo, run: PassCallable, checks: PassChecks) -> PassCallable:
    verifier = wpk_passes()["wpk-verify"].run if checks.verify_each and info.name != "wpk-verify" else None

    def checked(op: ir.Operation, pass_: Any) -> None:
        if checks.warn is not None and not info.finds_work(op):
            checks.warn(op.location, info.idle_warning())
        try:
            run(op, pass_)
        except CompilationError as err:
            if err.location is None:
                raise
            with op.context:
                err.location.emit_error(err.reason)  # type: ignore[attr-defined]
            pass_.signal_pass_failure()
            return
        if verifier is not None:
            verifier(op, pass_)

    checked.__name__ = getattr(run, "__name__", info.name)
    return checked


def wpk_passes() -> dict[str, PassInfo]:
    """All Woodpecker passes by name (built on each call; nothing is imported)."""
    # Names and summaries are those declared in passes/WpkPasses.td.
    infos = [
        PassInfo(
            "wpk-verify",
            "Check what IRDL cannot: static f32 tensors, ranks and attribute lengths",
            LazyPass("woodpecker.verify", "wpk_verify_pass"),
            verb="verify",
        ),
        PassInfo(
            "wpk-lower-to-linalg",
            "Lower every wpk op to linalg, tensor, arith and math on tensors",
            LazyPass("woodpecker.lowering", "lower_to_linalg"),
            verb="lower",
        ),
        PassInfo(
            "wpk-fold-constants",
            "Evaluate ops whose operands are all weights or constants, replacing them by new weights",
            LazyPass("woodpecker.graph.fold_constants", "fold_constants", style="graph"),
            verb="fold",
        ),
        PassInfo(
            "wpk-fold-batchnorm",
            "Fold inference batch_norm into its conv2d/gemm/matmul producer, else into a scale and shift",
            LazyPass("woodpecker.graph.fold_batchnorm", "fold_batchnorm", style="graph"),
        ),
        PassInfo(
            "wpk-fold-transpose",
            "Fold a transpose that swaps the last two dims of a matmul's right operand into the matmul",
            LazyPass("woodpecker.graph.fold_transpose", "fold_transpose", style="function"),
            verb="fold",
        ),
        PassInfo(
            "wpk-fuse-attention",
            "Recognize softmax(q k^T * scale + mask) v as one attention kernel",
            LazyPass("woodpecker.graph.fuse_attention", "fuse_attention", style="graph"),
            verb="fuse",
        ),
        PassInfo(
            "wpk-fuse-layernorm",
            "Recognize the decomposed LayerNorm of older exporters as one layer_norm kernel",
            LazyPass("woodpecker.graph.fuse_layernorm", "fuse_layernorm", style="graph"),
            verb="fuse",
        ),
        PassInfo(
            "wpk-fuse",
            "Fuse epilogues into conv2d/matmul/gemm, elementwise chains into one kernel, pads into conv/pool",
            LazyPass("woodpecker.graph.fuse", "fuse", style="function"),
            verb="fuse",
        ),
        PassInfo(
            "wpk-convert-layout",
            "Run convolution regions in the blocked channel layout NCHW[b]c, filters packed at compile time",
            LazyPass("woodpecker.graph.convert_layout", "convert_layout_pass", style="graph_factory"),
            verb="convert",
        ),
        PassInfo(
            "wpk-cleanup",
            "Erase dead wpk ops and merge duplicate ones",
            LazyPass("woodpecker.graph.cleanup", "cleanup", style="function"),
            verb="clean up",
        ),
        PassInfo(
            "wpk-outline-weights",
            "Turn the wpk.weight ops of @main into trailing function arguments",
            LazyPass("woodpecker.graph.outline_weights", "outline_weights", style="function"),
            verb="outline",
        ),
        PassInfo(
            "wpk-apply-schedule",
            "Apply per-kernel schedule configurations (JSON) to linalg on tensors, for the CPU or CUDA",
            LazyPass("woodpecker.targets.schedule_pass", "schedule_pass", style="factory"),
            acts_on="linalg",
            verb="schedule",
        ),
    ]
    return {info.name: info for info in infos}


# ----------------------------------------------------------------------------
# Textual pipelines.


@dataclass
class PipelineElement:
    """One element of a textual pipeline: `name`, `name{options}` or `anchor(nested,...)`."""

    name: str
    options: str | None = None
    nested: list[PipelineElement] | None = None
    text: str = ""

    def contains_wpk(self) -> list[str]:
        """Names of wpk passes/aliases anywhere inside this element's nested pipeline."""
        found = []
        for child in self.nested or []:
            if child.name.startswith(WPK_PREFIX) or child.name in GRAPH_PIPELINES:
                found.append(child.name)
            found.extend(child.contains_wpk())
        return found


@dataclass
class _Parser:
    text: str
    pos: int = 0

    def error(self, msg: str) -> PassPipelineError:
        caret = " " * self.pos + "^"
        return PassPipelineError(f"invalid pass pipeline: {msg}\n  {self.text}\n  {caret}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def options(self) -> str:
        """The text inside a balanced `{...}` starting at pos (nested braces and quotes respected)."""
        depth, start, quote = 0, self.pos, ""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return self.text[start + 1 : self.pos - 1]
        self.pos = start
        raise self.error("unbalanced '{'")

    def element(self) -> PipelineElement:
        self.skip_ws()
        start = self.pos
        while self.pos < len(self.text) and not (self.peek() in "{}(),\"'" or self.peek().isspace()):
            self.pos += 1
        name = self.text[start : self.pos]
        if not name:
            raise self.error("expected a pass or op name")
        self.skip_ws()
        elem = PipelineElement(name)
        if self.peek() == "{":
            elem.options = self.options()
            self.skip_ws()
        if self.peek() == "(":
            self.pos += 1
            elem.nested = self.elements(")")
            self.pos += 1
        elem.text = self.text[start : self.pos].strip()
        return elem

    def elements(self, end: str = "") -> list[PipelineElement]:
        """Comma-separated elements up to `end` (a closing paren) or the end of the text."""
        items: list[PipelineElement] = []
        self.skip_ws()
        if self.peek() == end:
            return items
        while True:
            items.append(self.element())
            self.skip_ws()
            if self.peek() == end:
                return items
            if self.peek() != ",":
                raise self.error("expected ',' or ')'" if end or self.peek() == ")" else "expected ','")
            self.pos += 1


def parse_pipeline(pipeline: str) -> list[PipelineElement]:
    """Top-level elements of `pipeline`; a `builtin.module(...)` wrapper is removed.

    Without the wrapper, the text is taken as the element list of `builtin.module`.
    """
    elements = _Parser(pipeline.strip()).elements()
    if len(elements) == 1 and elements[0].name == "builtin.module" and elements[0].nested is not None:
        if elements[0].options is not None:
            raise PassPipelineError("invalid pass pipeline: 'builtin.module' takes no options")
        return elements[0].nested
    return elements


def _known_passes_text(passes: dict[str, PassInfo]) -> str:
    names = sorted(passes)
    aliases = sorted(GRAPH_PIPELINES)
    return (
        f"known wpk passes: {', '.join(names)}; pipeline aliases: {', '.join(aliases)}; "
        "every upstream MLIR pass (as accepted by mlir-opt) is accepted too"
    )


def expand_pipeline(pipeline: str, _depth: int = 0) -> list[PipelineElement]:
    """Top-level elements with pipeline aliases (`wpk-lower`) replaced by their elements."""
    if _depth > 8:
        raise PassPipelineError("pipeline aliases nest too deeply")
    text = pipeline.strip()
    if text in GRAPH_PIPELINES:
        text = GRAPH_PIPELINES[text]
    out: list[PipelineElement] = []
    for elem in parse_pipeline(text):
        if elem.name in GRAPH_PIPELINES and elem.nested is None:
            if elem.options is not None:
                raise PassPipelineError(f"pipeline alias '{elem.name}' takes no options")
            out.extend(expand_pipeline(GRAPH_PIPELINES[elem.name], _depth + 1))
        else:
            out.append(elem)
    return out


def _mlir_pipeline_error(message: str, element: str) -> str:
    """MLIR's pipeline-parser message on one line, without its echo of the input and caret."""
    lines = []
    for line in message.splitlines():
        line = re.sub(r"^MLIR Textual PassPipeline Parser:\d+:\d+: error: ", "", line.strip())
        if line and line != element and set(line) - set("^~ "):
            lines.append(line)
    return "; ".join(lines) or message.strip()


def build_pass_manager(
    pipeline: str,
    context: ir.Context | None = None,
    graph: GraphContextProvider | None = None,
    checks: PassChecks | None = None,
) -> PassManager:
    """A PassManager on `builtin.module` running `pipeline`.

    `pipeline` is `builtin.module(a,b{opt=1},func.func(c))`, the bare element list
    `a,b{opt=1},func.func(c)`, or a name from GRAPH_PIPELINES. Top-level `wpk-*`
    elements are Woodpecker passes; every other element goes to MLIR's parser.
    `graph` gives the graph passes their GraphContext (the weight table); by default
    they share one decoded from the module when the first of them runs. `checks`: what the
    wpk passes check around their runs (PassChecks; default: nothing extra).
    Raises PassPipelineError (a ValueError) on syntax errors and unknown passes.
    """
    passes = wpk_passes()
    pm = PassManager("builtin.module", context=context)
    if graph is None:
        graph = _lazy_graph_context()
    for elem in expand_pipeline(pipeline):
        if elem.name.startswith(WPK_PREFIX) and elem.nested is None:
            info = passes.get(elem.name)
            if info is None:
                raise PassPipelineError(f"unknown wpk pass '{elem.name}'; {_known_passes_text(passes)}")
            if elem.options is not None and not info.takes_options:
                raise PassPipelineError(f"wpk pass '{elem.name}' takes no options, got '{{{elem.options}}}'")
            try:
                run = info.load(graph, elem.options, checks)
            except (ImportError, AttributeError) as err:
                raise PassPipelineError(f"wpk pass '{elem.name}' is unavailable: {err}") from err
            except ValueError as err:
                raise PassPipelineError(f"wpk pass '{elem.name}': {err}") from err
            pm.add(run, name=info.name, argument=info.name, description=info.summary)
            continue
        inner_wpk = elem.contains_wpk()
        if inner_wpk:
            raise PassPipelineError(
                f"wpk passes run on the whole module and must be top-level elements of "
                f"builtin.module(...): '{inner_wpk[0]}' is nested in '{elem.name}(...)'"
            )
        try:
            pm.add(elem.text)
        except ValueError as err:
            detail = _mlir_pipeline_error(str(err), elem.text)
            raise PassPipelineError(
                f"invalid pass pipeline element '{elem.text}': {detail}\n{_known_passes_text(passes)}"
            ) from err
    return pm
