"""The GPU schedule search space (`woodpecker.gpu.space`): domains, default, constraints,
sampling, and the knob <-> GpuConfig conversions. No compilation here (see test_gpu_model.py)."""

from __future__ import annotations

import math
import random
import re

import pytest

from woodpecker.gpu import GpuConfig, KernelProblem, default_config
from woodpecker.gpu.config import OperandAccess
from woodpecker.gpu.space import KNOBS, config_from_knobs, describe_space, gpu_search_space, knobs_from_config
from woodpecker.schedule import InvalidConfigError, SearchSpace


def matmul_problem(m: int, n: int, k: int) -> KernelProblem:
    return KernelProblem(
        kind="matmul",
        output_shape=(m, n),
        loop_extents=(m, n, k),
        output_loops=(0, 1),
        reduction_loops=(2,),
        operands=(
            OperandAccess((m, k), (((0, 1),), ((2, 1),)), True, 0),
            OperandAccess((k, n), (((2, 1),), ((1, 1),)), True, 1),
        ),
    )


def conv_problem(n: int, f: int, c: int, hw: int, kernel: int = 3, stride: int = 1) -> KernelProblem:
    ih = (hw - 1) * stride + kernel
    return KernelProblem(
        kind="conv",
        output_shape=(n, f, hw, hw),
        loop_extents=(n, f, hw, hw, c, kernel, kernel),
        output_loops=(0, 1, 2, 3),
        reduction_loops=(4, 5, 6),
        operands=(
            OperandAccess(
                (n, c, ih, ih), (((0, 1),), ((4, 1),), ((2, stride), (5, 1)), ((3, stride), (6, 1))), True, 0
            ),
            OperandAccess((f, c, kernel, kernel), (((1, 1),), ((4, 1),), ((5, 1),), ((6, 1),)), True, 1),
        ),
    )


PROBLEMS = {
    "matmul": matmul_problem(64, 48, 64),
    "big_matmul": matmul_problem(256, 256, 256),
    "batch_matmul": KernelProblem(
        kind="batch_matmul",
        output_shape=(4, 16, 12),
        loop_extents=(4, 16, 12, 8),
        output_loops=(0, 1, 2),
        reduction_loops=(3,),
        operands=(
            OperandAccess((4, 16, 8), (((0, 1),), ((1, 1),), ((3, 1),)), True, 0),
            OperandAccess((4, 8, 12), (((0, 1),), ((3, 1),), ((2, 1),)), True, 1),
        ),
    ),
    "conv": conv_problem(1, 16, 8, 16),
    "conv_strided": conv_problem(2, 16, 8, 8, stride=2),
    "pool": KernelProblem(
        kind="pool",
        output_shape=(1, 8, 8, 8),
        loop_extents=(1, 8, 8, 8, 2, 2),
        output_loops=(0, 1, 2, 3),
        reduction_loops=(4, 5),
        operands=(OperandAccess((1, 8, 16, 16), (((0, 1),), ((1, 1),), ((2, 2), (4, 1)), ((3, 2), (5, 1))), True, 0),),
    ),
    "gather": KernelProblem(kind="gather", output_shape=(1, 8, 18, 18), loop_extents=(1, 8, 18, 18)),
    "elementwise": KernelProblem(kind="elementwise", output_shape=(4, 16, 32), loop_extents=(4, 16, 32)),
    "reduction": KernelProblem(
        kind="reduction",
        output_shape=(64,),
        loop_extents=(64, 100),
        output_loops=(0,),
        reduction_loops=(1,),
        operands=(OperandAccess((64, 100), (((0, 1),), ((1, 1),)), True, 0),),
    ),
}


@pytest.fixture(scope="module")
def spaces() -> dict[str, SearchSpace]:
    return {name: gpu_search_space(problem, "sm_90", f"k0_{name}") for name, problem in PROBLEMS.items()}


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_default_is_the_heuristic_and_inside_the_domains(spaces: dict[str, SearchSpace], name: str) -> None:
    space, problem = spaces[name], PROBLEMS[name]
    assert space.template == f"cuda.{problem.kind}"
    assert space.kernel == f"k0_{name}"
    assert space.names == KNOBS
    assert space.is_valid(space.default)
    for knob in space.knobs:
        assert space.default[knob.name] in knob.domain
    # The default knobs describe default_config exactly (same launch geometry).
    heuristic = default_config(problem, "sm_90")
    assert config_from_knobs(space.default).launch_shape(problem) == heuristic.launch_shape(problem)
    # Tile knobs cover every output dim; every block tile divides its extent.
    for block in space.knob("block_tile").domain:
        assert len(block) == problem.rank
        assert all(e % b == 0 for e, b in zip(problem.output_shape, block, strict=True))
    for thread in space.knob("thread_tile").domain:
        assert len(thread) == problem.rank
    promotable = problem.kind in ("matmul", "batch_matmul", "conv", "pool")
    assert space.knob("promote_shared").domain == ((False, True) if promotable else (False,))
    assert space.size < 300_000


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_samples_are_valid_gpu_configs(spaces: dict[str, SearchSpace], name: str) -> None:
    space, problem = spaces[name], PROBLEMS[name]
    drawn = [space.sample(random.Random(seed)) for seed in range(8)]
    assert drawn == [space.sample(random.Random(seed)) for seed in range(8)]  # reproducible
    assert len({tuple(sorted(c.items())) for c in drawn}) >= 4  # and spread out
    for config in drawn:
        assert space.violations(config) == []
        shape = config_from_knobs(config).launch_shape(problem, "sm_90")  # GpuConfig agrees
        assert shape.threads <= 1024
        if config["promote_shared"]:
            assert shape.shared_bytes <= 48 * 1024 or config["shared_opt_in"]


def test_small_space_enumerates_to_valid_configs_including_the_default(spaces: dict[str, SearchSpace]) -> None:
    space = spaces["reduction"]
    configs = list(space.configs())
    assert space.default in configs
    assert 10 < len(configs) < space.size
    problem = PROBLEMS["reduction"]
    for config in configs:
        config_from_knobs(config).validate(problem, "sm_90")
    # the reduction loop (100) is tiled by 4 at most: powers of two from 4 that divide it
    assert space.knob("reduction_tile").domain == ((), (4,))


def test_knob_conversions_round_trip() -> None:
    problem = PROBLEMS["conv"]
    config = GpuConfig((8, 8, 16), (2, 1, 1), (4,), promote_shared=True, vector_width=1)
    knobs = knobs_from_config(config, problem)
    # canonical form: tiles over every dim, the whole extent written out
    assert knobs == {
        "block_tile": (1, 8, 8, 16),
        "thread_tile": (1, 2, 1, 1),
        "reduction_tile": (4,),
        "promote_shared": True,
        "vector_width": 1,
        "shared_opt_in": False,
    }
    assert config_from_knobs(knobs).launch_shape(problem) == config.launch_shape(problem)
    assert knobs_from_config(config_from_knobs(knobs)) == knobs
    # 0 and the whole extent mean the same; an untiled reduction is ()
    whole = knobs_from_config(GpuConfig((0, 0, 0, 0), (1, 0, 0, 0), (8, 0, 0)), problem)
    assert whole["block_tile"] == (1, 16, 16, 16)
    assert whole["thread_tile"] == (1, 16, 16, 16)
    assert whole["reduction_tile"] == ()
    with pytest.raises(ValueError, match=r"not GPU schedule knobs: \['tile'\]"):
        config_from_knobs({"tile": (1, 2)})


def test_json_lists_are_accepted(spaces: dict[str, SearchSpace]) -> None:
    space = spaces["matmul"]
    config = space.validate({"block_tile": [32, 16], "thread_tile": [4, 2], "reduction_tile": [8]})
    assert config["block_tile"] == (32, 16) and config["reduction_tile"] == (8,)
    assert config["promote_shared"] == space.default["promote_shared"]  # the rest from the default


# (space, partial config, blamed knob, reason)
INVALID = [
    ("matmul", {"vector_width": 3}, "vector_width", "value 3 is not in its domain"),
    ("matmul", {"block_tile": (24, 16)}, "block_tile", "value (24, 16) is not in its domain"),
    ("matmul", {"unroll": 2}, "unroll", "is not a knob of cuda.matmul"),
    ("elementwise", {"promote_shared": True}, "promote_shared", "value True is not in its domain [False]"),
    (
        "matmul",
        {"block_tile": (64, 48), "thread_tile": (1, 1), "promote_shared": False},
        "thread_tile",
        "3072 threads per block (block_tile (64, 48) / thread_tile (1, 1)) exceed 1024 on sm_90",
    ),
    (
        "gather",
        {"block_tile": (1, 1, 9, 18), "thread_tile": (1, 1, 2, 1)},
        "thread_tile",
        "thread_tile[2]=2 does not divide block_tile[2]=9",
    ),
    ("matmul", {"block_tile": (4, 16), "thread_tile": (8, 1)}, "thread_tile", "thread_tile[0]=8 is larger than"),
    (
        "big_matmul",
        {"block_tile": (128, 128), "thread_tile": (8, 8), "reduction_tile": (64,), "promote_shared": True},
        "promote_shared",
        "the shared tiles need 65536 bytes, more than 49152 bytes on sm_90 (shared_opt_in allows 232448)",
    ),
    (
        "conv_strided",
        {"block_tile": (1, 8, 4, 4), "thread_tile": (1, 1, 1, 1), "promote_shared": False},
        "block_tile",
        "tiles 4 output dims [0, 1, 2, 3] across blocks; at most 3",
    ),
    (
        "conv",
        {"block_tile": (1, 16, 16, 16), "thread_tile": (1, 8, 8, 4), "promote_shared": False},
        "thread_tile",
        "each thread accumulates 256 outputs (thread_tile (1, 8, 8, 4)), over the budget of 128 registers",
    ),
    (
        "elementwise",
        {"block_tile": (1, 16, 32), "thread_tile": (1, 1, 2), "vector_width": 4},
        "vector_width",
        "4 does not divide the innermost thread tile 2",
    ),
    (
        "matmul",
        {"block_tile": (64, 48), "thread_tile": (1, 48), "promote_shared": False},
        "thread_tile",
        "value (1, 48) is not in its domain",
    ),
]


@pytest.mark.parametrize(("name", "partial", "knob", "reason"), INVALID)
def test_invalid_configs_name_the_kernel_knob_and_reason(
    spaces: dict[str, SearchSpace], name: str, partial: dict, knob: str, reason: str
) -> None:
    space = spaces[name]
    assert not space.is_valid(space.complete(partial))
    with pytest.raises(InvalidConfigError, match=re.escape(f"kernel k0_{name}: knob '{knob}': ")) as err:
        space.validate(partial)
    assert err.value.kernel == f"k0_{name}" and err.value.knob == knob
    assert reason in err.value.reason


def test_threads_per_block_limit_in_the_domain_of_a_large_kernel() -> None:
    space = gpu_search_space(PROBLEMS["big_matmul"], "sm_90", "k0_big")
    config = {"block_tile": (128, 128), "thread_tile": (2, 2), "promote_shared": False}
    with pytest.raises(InvalidConfigError, match=r"knob 'thread_tile': 4096 threads per block"):
        space.validate(config)


def test_shared_opt_in_extends_the_limit_per_arch() -> None:
    problem = PROBLEMS["big_matmul"]
    promoted = {
        "block_tile": (256, 256),
        "thread_tile": (8, 8),
        "reduction_tile": (64,),
        "promote_shared": True,
        "shared_opt_in": True,
    }
    need = (256 * 64 + 64 * 256) * 4  # 128 KiB: under sm_80's 163 KiB and sm_90's 227 KiB
    for arch in ("sm_80", "sm_90"):
        space = gpu_search_space(problem, arch, "k0_big")
        assert space.knob("shared_opt_in").domain == (False, True)
        space.validate(promoted)
        assert config_from_knobs(promoted).launch_shape(problem, arch).shared_bytes == need
        with pytest.raises(InvalidConfigError, match=rf"more than 49152 bytes on {arch}"):
            space.validate({**promoted, "shared_opt_in": False})
    # A small kernel never needs the opt-in: the knob has one value.
    assert gpu_search_space(PROBLEMS["matmul"], "sm_90").knob("shared_opt_in").domain == (False,)


def test_register_budget_only_for_reducing_kernels(spaces: dict[str, SearchSpace]) -> None:
    assert "register_budget" in [c.name for c in spaces["conv"].constraints]
    assert "register_budget" not in [c.name for c in spaces["elementwise"].constraints]
    assert spaces["conv"].notes["register_budget"] == "128"


def test_spaces_stay_small_enough_to_sample_quickly(spaces: dict[str, SearchSpace]) -> None:
    for space in spaces.values():
        domains = [len(k.domain) for k in space.knobs]
        assert math.prod(domains) == space.size
    rng = random.Random(0)
    conv = spaces["conv_strided"]
    drawn = [conv.sample(rng) for _ in range(50)]
    assert sum(1 for c in drawn if c == conv.default) <= 2  # rejection sampling finds valid configs


def test_describe_space_writes_tile_domains_per_dim(spaces: dict[str, SearchSpace]) -> None:
    text = describe_space(spaces["gather"])
    assert "cuda.gather schedule of k0_gather" in text
    assert "block_tile = (1, 1, 9, 18)  domain [1] x [1, 2, 4, 8] x [1, 2, 9, 18] x [1, 2, 18]" in text
    assert "constraints: tiles_nest, grid_dims" in text
