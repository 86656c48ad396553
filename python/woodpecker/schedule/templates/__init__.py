"""The CPU schedule templates, by kernel kind."""

from woodpecker.kernels.space import SearchSpace
from woodpecker.schedule.blocked_kinds import blocked_conv_kind
from woodpecker.schedule.kernels import Kernel
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.templates.base import NoDefault, Template
from woodpecker.schedule.templates.blocked_conv import BlockedConvTemplate
from woodpecker.schedule.templates.conv import ConvTemplate, applicable
from woodpecker.schedule.templates.generic import GenericTemplate
from woodpecker.schedule.templates.matmul import MatmulTemplate

TEMPLATES: dict[str, Template] = {
    "matmul": MatmulTemplate(),
    "conv": ConvTemplate("conv"),
    "depthwise_conv": ConvTemplate("depthwise_conv"),
    "blocked_conv": BlockedConvTemplate("blocked_conv"),
    "blocked_depthwise_conv": BlockedConvTemplate("blocked_depthwise_conv"),
    "pool": GenericTemplate("pool"),
    "reduction": GenericTemplate("reduction"),
    "elementwise": GenericTemplate("elementwise"),
}


# Kernels their kind's template cannot handle (strided or dilated convolutions).
FALLBACKS: dict[str, Template] = {
    "conv": GenericTemplate("conv", "cpu.conv_generic"),
    "depthwise_conv": GenericTemplate("depthwise_conv", "cpu.depthwise_conv_generic"),
    # The plain generic of lowering/layout.py (layouts lowering/blocked_conv.py does not take).
    "blocked_conv": GenericTemplate("blocked_conv", "cpu.blocked_conv_generic"),
}


STRIDED_CONV = ConvTemplate("conv", strided=True)
GENERIC_FALLBACK = GenericTemplate("matmul", "cpu.matmul_generic")


def template_for(kernel: Kernel) -> Template:
    """The template for `kernel`'s kind (and strides), before looking at a machine."""
    if kernel.kind == "blocked_conv":  # the plain generic form (lowering/layout.py) by the generic template
        known = blocked_conv_kind(kernel.loops.maps, kernel.loops.parallel) is not None
        return TEMPLATES[kernel.kind] if known else FALLBACKS[kernel.kind]
    if kernel.kind in FALLBACKS and not applicable(kernel):
        return STRIDED_CONV if applicable(kernel, strided=True) else FALLBACKS[kernel.kind]
    return TEMPLATES[kernel.kind]


def schedule_space(kernel: Kernel, target: CpuMachine) -> tuple[Template, SearchSpace]:
    """The template that schedules `kernel` on `target`, and its search space: `template_for`'s,
    or the kind's fallback (the generic template) when that one has no valid configuration for
    this kernel on this machine (e.g. a register tile that cannot split a tiny output)."""
    template = template_for(kernel)
    try:
        return template, template.space(kernel, target)
    except NoDefault:
        fallback = FALLBACKS.get(kernel.kind, GENERIC_FALLBACK)
        return fallback, fallback.space(kernel, target)


__all__ = [
    "FALLBACKS",
    "TEMPLATES",
    "BlockedConvTemplate",
    "ConvTemplate",
    "GenericTemplate",
    "MatmulTemplate",
    "NoDefault",
    "Template",
    "schedule_space",
    "template_for",
]
