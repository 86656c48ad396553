"""`compile()`'s arguments cannot contradict each other, and every target compiles the same way."""

from __future__ import annotations

import pytest

import woodpecker
from woodpecker.compiler import CompileOptions, resolve_options
from woodpecker.errors import CompilationError
from woodpecker.models import bundled_model_path


def test_keywords_make_the_options_when_none_are_given() -> None:
    options = resolve_options(None, "cuda", 1, "sm_80")
    assert (options.target, options.opt_level, options.arch) == ("cuda", 1, "sm_80")
    default = resolve_options(None, None, None, None)
    assert (default.target, default.opt_level, default.arch) == ("cpu", 2, "sm_90")


@pytest.mark.parametrize(
    ("keywords", "options", "name"),
    [
        ({"target": "cuda"}, CompileOptions(), "target"),
        ({"opt_level": 0}, CompileOptions(opt_level=2), "opt_level"),
        ({"arch": "sm_80"}, CompileOptions(target="cuda", arch="sm_90"), "arch"),
    ],
)
def test_a_keyword_that_contradicts_the_options_is_an_error(keywords: dict, options: CompileOptions, name: str) -> None:
    with pytest.raises(CompilationError, match=rf"compile\({name}=.*contradicts options\.{name}="):
        woodpecker.compile(bundled_model_path(), options=options, **keywords)


def test_a_keyword_that_agrees_with_the_options_is_fine() -> None:
    compiled = woodpecker.compile(bundled_model_path(), target="cpu", opt_level=1, options=CompileOptions(opt_level=1))
    assert compiled.target == "cpu"
    cuda = woodpecker.compile(bundled_model_path(), target="cuda",
                              options=CompileOptions(target="cuda", use_tuning_records=False))
    assert cuda.target == "cuda" and cuda.plan is not None


def test_both_targets_count_the_same_model_kernels() -> None:
    """One kernel identity: the CPU code, the CUDA plan and the selection report agree."""
    cpu = woodpecker.compile(bundled_model_path(), options=CompileOptions(select="heuristic", layout="nchw",
                                                                        use_tuning_records=False))
    cuda = woodpecker.compile(bundled_model_path(), options=CompileOptions(target="cuda", select="heuristic",
                                                                         use_tuning_records=False))
    names = [step.name for step in cuda.plan.steps]
    assert cpu.stats.num_kernels == cuda.stats.num_kernels == len(names) == 11
    assert sorted(n for c in cpu.selection for n in c.kernel_names) == sorted(names)
    assert sorted(n for c in cuda.selection for n in c.kernel_names) == sorted(names)
    assert cpu.executable.kernel_names() == names
