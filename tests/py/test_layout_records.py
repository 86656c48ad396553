"""Layout records: the layout search's decision in the tuning database (database/layout.py),
read by compile (select/layout_record.py) and written by `wpk tune --search-layout`."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest
from test_layout_regions import two_region_net

import woodpecker
from woodpecker.backend.cpu import CpuOptions
from woodpecker.cli.main import main
from woodpecker.compiler import CompileOptions
from woodpecker.database import open_database
from woodpecker.database.layout import LAYOUT_KIND, LayoutContext, context_of, lookup_layout, record_layout
from woodpecker.graph.convert_layout import Region, RegionConv
from woodpecker.importer import import_onnx_with_weights
from woodpecker.models import bundled_model_path
from woodpecker.runtime.cpu.host import vector_lanes
from woodpecker.select.layout_record import layout_context
from woodpecker.targets.cpu import CpuTarget
from woodpecker.tune.end_to_end import EndToEnd, Spread
from woodpecker.tune.layout_search import search_layout

BACKENDS = ("sqlite", "journal", "postgresql")
THREADS = CpuTarget(CpuOptions()).threads
LANES = vector_lanes()
OTHER = "8" if LANES != 8 else "16"
CHOICE = {"conv_a": "nchw", "conv_b": OTHER}  # not the rule's: a compile that applies it shows it


@pytest.fixture(params=BACKENDS)
def new_url(request, tmp_path) -> Callable[[], str]:
    """Locations of fresh databases of the backend (PostgreSQL: the session's server, or skipped)."""
    count = iter(range(1000))
    if request.param == "postgresql":
        postgres = request.getfixturevalue("postgres")
        if isinstance(postgres, str):
            pytest.skip(postgres)
        return postgres.new_database
    suffix = ".db" if request.param == "sqlite" else ".journal"
    return lambda: str(tmp_path / f"db{next(count)}{suffix}")


def _context(**changes) -> LayoutContext:
    """The context of compiling two_region_net here, with `changes`."""
    context = layout_context(import_onnx_with_weights(two_region_net()), 2, THREADS, regions=("conv_a", "conv_b"))
    return LayoutContext(**{**context.to_json(), "regions": context.regions, **changes})


# -- the search ---------------------------------------------------------------------------------
REGIONS = [Region("conv_a", (RegionConv("conv_a", 3, 16),)), Region("conv_b", (RegionConv("conv_b", 16, 24),))]


def _fake_model(cost: dict[str, dict[str, float]]) -> tuple[Callable, Callable]:
    """run_with and compare of a model whose time is the sum of its regions' choices' costs."""

    def run_with(config):
        seconds = sum(cost[name][choice] for name, choice in config.items())
        return lambda: seconds

    def compare(before, after) -> EndToEnd:
        return EndToEnd(Spread.of([before()]), Spread.of([after()]), 1)

    return run_with, compare


def test_the_time_budget_stops_the_search_and_says_what_was_left() -> None:
    run_with, compare = _fake_model({"conv_a": {"8": 3.0, "nchw": 1.0, "16": 2.0},
                                     "conv_b": {"8": 2.0, "nchw": 1.0, "16": 5.0}})  # fmt: skip
    ticks = iter(range(100))
    found = search_layout(REGIONS, 8, run_with, compare, time_budget_s=2.5, clock=lambda: float(next(ticks)))
    # clock: 0 at the start, 1 and 2 before conv_a's two candidates, 3 (over budget) before conv_b's
    assert found.config == {"conv_a": "nchw", "conv_b": "8"}
    assert found.skipped == ["conv_b:nchw", "conv_b:16"]
    assert found.seconds == 3.0


# -- the record in the database -------------------------------------------------------------------
def test_a_layout_record_round_trips(new_url) -> None:
    context = _context()
    with open_database(new_url()) as db:
        record = record_layout(db, context, CHOICE, 0.004, input_shapes=[(1, 3, 10, 10)])
        assert record.config == CHOICE and record.seconds == 0.004
        workload = db.workloads([context.key])[context.key]
        assert workload.kind == LAYOUT_KIND and workload.device == context.device
        assert context_of(workload) == context and context_of(workload).regions == ("conv_a", "conv_b")
        found = lookup_layout(db, context, lambda: ["conv_a", "conv_b"])
        assert found.config == CHOICE and found.reason is None
        # the same decision measured again: a confirmation (the lower time kept), not a second trial
        assert record_layout(db, context, CHOICE, 0.003).seconds == 0.003
        # a slower other decision is recorded but the faster one stays the record
        rule = {"conv_a": str(LANES), "conv_b": str(LANES)}
        assert record_layout(db, context, rule, 0.005).config == CHOICE
        assert len(db.trials([context.key])[context.key]) == 2


def test_a_layout_record_moves_between_databases_as_a_file(tmp_path: Path) -> None:
    context = _context()
    with open_database(str(tmp_path / "a.db")) as db:
        record_layout(db, context, CHOICE, 0.004)
        db.export(tmp_path / "records.jsonl")
    with open_database(str(tmp_path / "b.journal")) as db:
        db.import_file(tmp_path / "records.jsonl")
        assert lookup_layout(db, context, lambda: ["conv_a", "conv_b"]).config == CHOICE


# -- compile reads it ---------------------------------------------------------------------------
def _compile(db: Path, model: onnx.ModelProto | None = None, **options) -> tuple[Any, list[str]]:
    stages: dict[str, str] = {}

    def keep(stage: str, module: object) -> None:
        stages.setdefault(stage, str(module).split("{-#")[0])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = woodpecker.compile(
            model or two_region_net(),
            options=CompileOptions(tuning_db=str(db), libraries="none", on_stage=keep, **options),
        )
    compiled.optimized = stages["optimize"]  # type: ignore[attr-defined]
    return compiled, [str(w.message) for w in caught if "layout record" in str(w.message)]


def _recorded(tmp_path: Path, config: dict[str, str], **changes) -> Path:
    path = tmp_path / "tuning.db"
    with open_database(str(path)) as db:
        record_layout(db, _context(**changes), config, 0.004)
    return path


def _blocks(compiled) -> list[int]:
    """The block size of every blocked conv in the optimized graph, in order (0: an NCHW conv)."""
    text = compiled.optimized
    convs = re.findall(r'"wpk\.(blocked_conv2d|conv2d|fused_conv2d)"[^\n]*-> tensor<((?:\d+x)+)f32>$', text, re.M)
    return [int(shape.split("x")[-2]) if op == "blocked_conv2d" else 0 for op, shape in convs]


def test_compile_applies_the_record(tmp_path: Path) -> None:
    db = _recorded(tmp_path, CHOICE)
    compiled, warned = _compile(db)
    assert warned == []
    assert compiled.stats.layout == "from records (2 regions)"
    assert _blocks(compiled) == [0, int(OTHER), int(OTHER)]  # conv_a nchw, conv_b's region (b, c) blocked
    rule, _ = _compile(tmp_path / "missing.db")
    assert rule.stats.layout == "rule" and _blocks(rule) == [LANES, LANES, LANES]
    assert any("blocked_conv" in name for name in compiled.executable.kernel_names())
    assert sum("blocked_conv" in name for name in rule.executable.kernel_names()) == 3
    assert sum("blocked_conv" in name for name in compiled.executable.kernel_names()) == 2


def test_an_explicit_layout_or_regions_override_the_record(tmp_path: Path) -> None:
    db = _recorded(tmp_path, CHOICE)
    nchw, warned = _compile(db, layout="nchw")
    assert nchw.stats.layout == "nchw" and _blocks(nchw) == [0, 0, 0] and warned == []
    given, _ = _compile(db, layout_regions={"conv_a": OTHER, "conv_b": "nchw"})
    assert given.stats.layout == "given (2 regions)" and _blocks(given) == [int(OTHER), 0, 0]
    untuned, _ = _compile(db, use_tuning_records=False)
    assert untuned.stats.layout == "rule" and _blocks(untuned) == [LANES] * 3


@pytest.mark.parametrize(
    ("config", "changes", "why"),
    [
        ({"conv_a": "nchw", "conv_x": "8"}, {}, "it names region 'conv_x', which the model no longer has"),
        ({"conv_a": "nchw"}, {}, "it has no choice for region 'conv_b'"),
        (CHOICE, {"threads": THREADS + 1}, f"measured with {THREADS + 1} threads, this compile uses {THREADS}"),
        (CHOICE, {"device": "Some Other CPU avx2 1t"}, "it was measured on 'Some Other CPU avx2 1t'"),
        (CHOICE, {"graph": "0" * 64, "model": "net.onnx"}, "it was measured on another graph of net.onnx"),
    ],
)
def test_a_stale_or_foreign_record_is_one_warning_then_the_rule(
    tmp_path: Path, config: dict[str, str], changes: dict, why: str
) -> None:
    db = _recorded(tmp_path, config, **changes)
    model = tmp_path / "net.onnx"
    onnx.save(two_region_net(), model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = woodpecker.compile(model, options=CompileOptions(tuning_db=str(db), libraries="none"))
    messages = [str(w.message) for w in caught if "layout record" in str(w.message)]
    assert len(messages) == 1 and why in messages[0] and messages[0].endswith("using the layout rule"), messages
    assert compiled.stats.layout == "rule"


def test_a_record_of_another_model_is_not_applied_and_not_warned_about(tmp_path: Path) -> None:
    db = _recorded(tmp_path, CHOICE, graph="f" * 64, model="other.onnx")
    compiled, warned = _compile(db)
    assert compiled.stats.layout == "rule" and warned == []


# -- wpk tune --search-layout ---------------------------------------------------------------------
def test_tune_search_layout_records_and_compile_applies_it(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "tuning.db")
    args = ["tune", "--search-layout", "--trials", "1", "--confirm", "0", "--no-end-to-end", "--no-progress",
            "--in-process", "--kernel", "k0_conv", "--db", db]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "layout search over 2 regions" in out, out
    decision = re.search(r"layout decision (\{.*\}) \(([0-9.]+) ms median\) recorded as (cpu\.layout\.\S+) in", out)
    assert decision is not None, out
    model = bundled_model_path()
    context = layout_context(import_onnx_with_weights(str(model)), 2, THREADS, model.name)
    assert decision.group(3) == context.key
    with open_database(db) as opened:
        record = opened.records([context.key])[context.key]
    assert decision.group(1) == "{" + ", ".join(f"{k}: {v}" for k, v in record.config.items()) + "}"
    assert main(["compile", str(model), "--db", db]) == 0
    assert f"layout: from records ({len(record.config)} regions)" in capsys.readouterr().out
    assert main(["compile", str(model), "--db", db, "--layout", "nchw"]) == 0
    assert "layout: nchw" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--layout", "nchw"], "--search-layout chooses the layouts of --layout auto's regions, not of --layout nchw"),
        (["--opt-level", "1"], "--search-layout needs an optimization level that converts layouts"),
        (["--target", "cuda"], "--search-layout is for the CPU"),
    ],
)
def test_tune_search_layout_refuses_what_it_cannot_search(extra, message, tmp_path: Path, capsys) -> None:
    assert main(["tune", "--search-layout", "--db", str(tmp_path / "t.db"), *extra]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("wpk tune: error:")]
    assert len(errors) == 1 and message in errors[0], err


def test_the_bundled_models_regions_are_what_the_cli_test_expects() -> None:
    from woodpecker.frontend import layout_regions

    imported = import_onnx_with_weights(str(bundled_model_path()))
    before = str(imported.module.operation)[:2000]
    assert len(layout_regions(imported)) == 2
    assert str(imported.module.operation)[:2000] == before  # listing regions leaves the model as it was


def test_tune_report_leaves_layout_decisions_out_of_the_kernel_tables(tmp_path: Path) -> None:
    from woodpecker.tune.report import load_workloads

    db = _recorded(tmp_path, CHOICE)
    assert load_workloads(str(db)) == []  # the database holds only a layout decision
