"""passes/WpkPasses.td and the Python pass registry declare the same passes with the same summaries."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from woodpecker.passes import wpk_passes

ROOT = Path(__file__).resolve().parents[2]


def _declared_passes() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("gen_wpk_irdl", ROOT / "tools" / "gen_wpk_irdl.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, gen)  # its dataclasses look their module up there
    spec.loader.exec_module(gen)
    records = gen.dump_records(ROOT / "passes" / "WpkPasses.td", gen.default_tblgen(), gen.default_include())
    return {records[name]["argument"]: records[name]["summary"] for name in records["!instanceof"]["PassBase"]}


def test_registry_matches_declarations() -> None:
    declared = _declared_passes()
    registered = {name: info.summary for name, info in wpk_passes().items()}
    assert registered == declared


def test_every_registered_pass_is_callable() -> None:
    for info in wpk_passes().values():
        assert callable(info.run), info.name
