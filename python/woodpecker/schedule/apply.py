"""Applying schedules to a lowered module: kernels -> search spaces -> configs -> transform.

`plan_schedules` finds the kernels of `@main` (linalg on tensors) and picks each scheduling
unit's configuration: a model kernel's entry of `configs` (`k3_conv`) is its main unit's, a
unit's own name (`k3_conv.0`, a padding copy) is that unit's, an entry for a kind (`conv`) is
every unit's of that kind, the rest get the template's default;
every configuration is validated against its unit's search space before anything is
transformed. `apply_schedules` then runs one transform script per unit, so that a failure
names the kernel and its configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlir import ir
from mlir.dialects.transform import interpreter

from woodpecker.errors import CompilationError
from woodpecker.kernels.space import Config, InvalidConfigError, KnobValue, SearchSpace
from woodpecker.schedule.kernels import KINDS, Kernel, find_kernels, model_kernels, untag
from woodpecker.schedule.script import VECTOR_LOWERING, Script
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.templates import Template, schedule_space

ConfigMap = Mapping[str, Mapping[str, KnobValue]]


@dataclass
class ScheduledKernel:
    kernel: Kernel
    template: Template  # chosen once: `prepare` rewrites the IR a choice is made from
    space: SearchSpace
    config: Config

    @property
    def is_default(self) -> bool:
        return self.config == self.space.default


def plan_schedules(module: ir.Module, configs: ConfigMap | None, target: CpuMachine) -> list[ScheduledKernel]:
    """Kernels of `module` (generalized and tagged in place) with validated configurations."""
    configs = dict(configs or {})
    kernels = find_kernels(module)
    names = {k.name for k in model_kernels(kernels)}
    units = {k.name for k in kernels}  # a kernel's other units (`k3_conv.0`) may be configured too
    unknown = sorted(set(configs) - names - units - set(KINDS))
    if unknown:
        raise InvalidConfigError(
            unknown[0],
            None,
            f"names no kernel of this module and no kernel kind (kernels: {', '.join(sorted(names)) or 'none'}; "
            f"kinds: {', '.join(KINDS)})",
        )
    planned = []
    for kernel in kernels:
        template, space = schedule_space(kernel, target)
        requested = configs.get(kernel.name, configs.get(kernel.kind, {}))
        if not isinstance(requested, Mapping):
            raise InvalidConfigError(kernel.name, None, f"expected an object of knob values, got {requested!r}")
        planned.append(ScheduledKernel(kernel, template, space, space.validate(requested)))
    return planned


def schedule_scripts(scheduled: ScheduledKernel, target: CpuMachine) -> list[str]:
    """The transform modules (one per phase) that apply a kernel's configuration."""
    script = Script()
    scheduled.template.schedule(scheduled.kernel, scheduled.config, target, script)
    return script.texts()


def apply_schedules(
    module: ir.Module, configs: ConfigMap | None = None, target: CpuMachine | None = None
) -> list[ScheduledKernel]:
    """Schedules every kernel of `module` in place; returns what was applied."""
    target = target or CpuMachine.host()
    with ir.Location.unknown(module.context):
        return _apply(module, configs, target)


def _apply(module: ir.Module, configs: ConfigMap | None, target: CpuMachine) -> list[ScheduledKernel]:
    planned = plan_schedules(module, configs, target)
    for scheduled in planned:
        scheduled.template.prepare(scheduled.kernel, scheduled.config)
        what = f"kernel {scheduled.kernel.name} ({scheduled.space.template}, config {scheduled.config}): schedule"
        for text in schedule_scripts(scheduled, target):
            _run_script(module, text, what)
    _run_script(module, lower_vectors_script(), "lowering vector ops")
    untag(module)
    return planned


def lower_vectors_script() -> str:
    """Lowers the vector ops of every kernel at once (contractions to FMAs, transfers to 1-D)."""
    script = Script()
    script.patterns(script.func(), VECTOR_LOWERING)
    return script.text()


def _run_script(module: ir.Module, text: str, what: str) -> None:
    try:
        script = ir.Module.parse(text, context=module.context)
        interpreter.apply_named_sequence(module.operation, script.body.operations[0], script)
    except (ir.MLIRError, ValueError) as err:
        raise CompilationError(f"{what} failed: {err}") from None
