"""Reading a kernel's epilogue (`linalg.generic`) as the post-ops a library applies.

The epilogue of a kernel (woodpecker.schedule.kernels) is one all-parallel generic whose
body computes, per element, f(main result, side operands...). `read_epilogue` turns that body
into an expression tree and peels it from the outside in, step by step:

* `x + side`, `x - side`, `x * side`, `x / side` with a side operand: a binary post-op (the
  first `x + bias[c]` with a per-channel weight is the library's bias instead); `x + (a + b)`
  with side operands a and b (a residual with its own bias): two binary adds;
* `x * c`, `x + c`, `x - c`, `x / c` with a constant: eltwise linear;
* `max(x, 0)`: relu; `x >= 0 ? x : a * x`: relu with a negative slope; `min(max(x, lo), hi)`
  (either half alone too): clip;
* `1 / (1 + exp(-x))`: logistic; `x * logistic(x)`: swish; `tanh(x)`: tanh.

Anything else (a side operand on the left of `-` or `/`, two uses of the result that are not
swish, an op of another kind) makes the kernel not applicable for the library, with the
reason in `EpilogueError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlir import ir

from woodpecker.schedule.kernels import owner_of

FLT_MAX = 3.4028234663852886e38
# arith.cmpf predicates that mean "x >= 0 selects x" for a leaky relu (at 0 both branches agree).
_PREDICATES = {2: "ogt", 3: "oge", 9: "ugt", 10: "uge"}

Expr = tuple  # ("arg", i) | ("const", value) | (op name, predicate or "", *children)


class EpilogueError(ValueError):
    """The epilogue computes something the library's post-ops cannot."""


@dataclass(frozen=True)
class Step:
    """One post-op, in the order it is applied."""

    kind: str  # "eltwise" | "binary"
    alg: str  # eltwise: relu clip logistic tanh swish linear; binary: add sub mul div
    alpha: float = 0.0
    beta: float = 0.0
    side: int | None = None  # binary: the epilogue's operand number of the second operand


@dataclass(frozen=True)
class Epilogue:
    """The epilogue of a kernel as post-ops on the main op's result."""

    main_operand: int  # which operand of the epilogue is the main op's result
    steps: tuple[Step, ...]
    bias: int | None = None  # operand number of a per-channel bias added first, if any



def _expressions(generic: ir.Operation) -> Expr:
    """The expression the body yields, over block arguments and constants."""
    body = generic.regions[0].blocks[0]
    exprs: dict[ir.Value, Expr] = {}

    def expr_of(value: ir.Value) -> Expr:
        for known, expr in exprs.items():
            if known == value:
                return expr
        if isinstance(value.owner, ir.Block) and value.owner == body:
            return ("arg", ir.BlockArgument(value).arg_number)
        owner = owner_of(value)
        if owner is not None and owner.name == "arith.constant":
            attr = owner.attributes["value"]
            if isinstance(attr, ir.FloatAttr) or ir.FloatAttr.isinstance(attr):
                return ("const", float(ir.FloatAttr(attr).value))
        raise EpilogueError(f"the epilogue uses a value it cannot read as a constant: {value}")

    for op in body.operations:
        op = op.operation
        if op.name == "linalg.yield":
            if len(op.operands) != 1:
                raise EpilogueError("the epilogue yields more than one value")
            return expr_of(op.operands[0])
        if len(op.results) != 1:
            raise EpilogueError(f"'{op.name}' in the epilogue")
        if op.name == "arith.constant":
            exprs[op.results[0]] = expr_of(op.results[0])
            continue
        predicate = ""
        if op.name == "arith.cmpf":
            predicate = _PREDICATES.get(ir.IntegerAttr(op.attributes["predicate"]).value, "other")
        exprs[op.results[0]] = (op.name, predicate, *(expr_of(v) for v in op.operands))
    raise EpilogueError("the epilogue has no linalg.yield")


def _contains(expr: Expr, target: Expr) -> bool:
    if expr == target:
        return True
    return expr[0] not in ("arg", "const") and any(_contains(child, target) for child in expr[2:])


def _const(expr: Expr) -> float | None:
    return expr[1] if expr[0] == "const" else None


def _logistic_of(expr: Expr) -> Expr | None:
    """x when `expr` is 1 / (1 + exp(-x))."""
    if expr[0] != "arith.divf" or _const(expr[2]) != 1.0:
        return None
    denominator = expr[3]
    if denominator[0] != "arith.addf":
        return None
    one, exp = denominator[2], denominator[3]
    if _const(one) != 1.0:
        one, exp = exp, one
    if _const(one) != 1.0 or exp[0] != "math.exp" or exp[2][0] != "arith.negf":
        return None
    return exp[2][2]


class _Peeler:
    def __init__(self, main_arg: Expr):
        self.main = main_arg
        self.steps: list[Step] = []  # outermost first

    def side_of(self, expr: Expr) -> int | None:
        """The operand number when `expr` is a side operand (a block argument other than the main)."""
        return expr[1] if expr[0] == "arg" and expr != self.main else None

    def peel(self, expr: Expr) -> None:
        while expr != self.main:
            expr = self.step(expr)

    def step(self, expr: Expr) -> Expr:
        name = expr[0]
        if name == "arg":
            raise EpilogueError("the epilogue's result does not depend on the kernel's result")
        if name == "const":
            raise EpilogueError("the epilogue yields a constant")
        children = expr[2:]
        if name == "arith.select":
            return self.leaky(expr)
        if name == "arith.mulf" and _swish(expr):
            self.steps.append(Step("eltwise", "swish", alpha=1.0))
            return children[0]
        inner = [c for c in children if _contains(c, self.main)]
        if len(inner) != 1:
            raise EpilogueError(f"'{name}' in the epilogue combines the kernel's result with itself")
        x = inner[0]
        if len(children) == 1:
            if name == "math.tanh":
                self.steps.append(Step("eltwise", "tanh"))
                return x
            raise EpilogueError(f"'{name}' in the epilogue has no library post-op")
        other = children[1] if children[0] is x else children[0]
        on_left = children[0] is x
        if name == "arith.divf" and (logistic := _logistic_of(expr)) is not None:
            self.steps.append(Step("eltwise", "logistic"))
            return logistic
        if name in ("arith.maximumf", "arith.minimumf"):
            return self.clip(name, x, other)
        algs = {"arith.addf": "add", "arith.subf": "sub", "arith.mulf": "mul", "arith.divf": "div"}
        if name not in algs:
            raise EpilogueError(f"'{name}' in the epilogue has no library post-op")
        alg = algs[name]
        if alg in ("sub", "div") and not on_left:
            raise EpilogueError(f"'{name}' with the kernel's result on the right has no library post-op")
        value = _const(other)
        if value is not None:
            scale, shift = {"add": (1.0, value), "sub": (1.0, -value), "mul": (value, 0.0)}.get(alg, (None, 0.0))
            if alg == "div":
                if value == 0.0:
                    raise EpilogueError("the epilogue divides by the constant 0")
                scale = 1.0 / value
            self.steps.append(Step("eltwise", "linear", alpha=scale, beta=shift))
            return x
        side = self.side_of(other)
        if side is None and alg == "add" and other[0] == "arith.addf":
            # x + (a + b) with side operands a, b (a residual plus its own bias): two adds
            sides = [self.side_of(c) for c in other[2:]]
            if all(s is not None for s in sides):
                self.steps.extend(Step("binary", "add", side=s) for s in reversed(sides))
                return x
        if side is None:
            raise EpilogueError(f"'{name}' in the epilogue takes a computed operand")
        self.steps.append(Step("binary", alg, side=side))
        return x

    def clip(self, name: str, x: Expr, other: Expr) -> Expr:
        bound = _const(other)
        if bound is None:
            raise EpilogueError(f"'{name}' in the epilogue takes a non-constant bound")
        if name == "arith.maximumf":
            self.steps.append(Step("eltwise", "relu") if bound == 0.0 else Step("eltwise", "clip", bound, FLT_MAX))
            return x
        # min(x, hi), or min(max(x, lo), hi): one clip
        if x[0] == "arith.maximumf":
            lo_children = x[2:]
            inner = [c for c in lo_children if _contains(c, self.main)]
            lo = [c for c in lo_children if c is not inner[0]] if len(inner) == 1 else []
            if len(inner) == 1 and lo and _const(lo[0]) is not None:
                self.steps.append(Step("eltwise", "clip", _const(lo[0]), bound))
                return inner[0]
        self.steps.append(Step("eltwise", "clip", -FLT_MAX, bound))
        return x

    def leaky(self, expr: Expr) -> Expr:
        """x >= 0 ? x : x * a  (leaky relu as the lowering writes it)."""
        condition, chosen, other = expr[2], expr[3], expr[4]
        if (
            condition[0] == "arith.cmpf"
            and condition[1] in _PREDICATES.values()
            and condition[2] == chosen
            and _const(condition[3]) == 0.0
            and other[0] == "arith.mulf"
            and chosen in other[2:]
        ):
            slope = next((_const(c) for c in other[2:] if _const(c) is not None), None)
            if slope is not None:
                self.steps.append(Step("eltwise", "relu", alpha=slope))
                return chosen
        raise EpilogueError("'arith.select' in the epilogue is not a leaky relu")


def _swish(expr: Expr) -> bool:
    """x * logistic(x)."""
    a, b = expr[2], expr[3]
    return _logistic_of(b) == a or _logistic_of(a) == b


def read_epilogue(generic: ir.Operation, main_operand: int, bias_candidates: set[int] = frozenset()) -> Epilogue:
    """The post-ops of `generic` applied to its operand `main_operand` (the main op's result:
    an input, or the output the epilogue updates in place).

    A first `add` of an operand in `bias_candidates` (per-channel weights) becomes the bias.
    Raises EpilogueError when a step has no post-op.
    """
    inputs = len(generic.operands) - len(generic.results)
    body = generic.regions[0].blocks[0]
    if main_operand >= inputs:
        # The epilogue updates the main result in place (its `outs`, as the GPU kernels have it).
        if main_operand != inputs or len(generic.results) != 1:
            raise EpilogueError("the kernel's result is neither an input nor the output of its epilogue")
    elif any(list(arg.uses) for arg in list(body.arguments)[inputs:]):
        raise EpilogueError("the epilogue reads its output tensor")
    peeler = _Peeler(("arg", main_operand))
    peeler.peel(_expressions(generic))
    steps = list(reversed(peeler.steps))
    bias = None
    if steps and steps[0].kind == "binary" and steps[0].alg == "add" and steps[0].side in bias_candidates:
        bias = steps.pop(0).side
    return Epilogue(main_operand, tuple(steps), bias)
