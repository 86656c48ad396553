"""The CPU schedule templates, by kernel kind."""

from woodpecker.schedule.kernels import Kernel
from woodpecker.schedule.templates.base import Template
from woodpecker.schedule.templates.conv import ConvTemplate, applicable
from woodpecker.schedule.templates.generic import GenericTemplate
from woodpecker.schedule.templates.matmul import MatmulTemplate

TEMPLATES: dict[str, Template] = {
    "matmul": MatmulTemplate(),
    "conv": ConvTemplate("conv"),
    "depthwise_conv": ConvTemplate("depthwise_conv"),
    "pool": GenericTemplate("pool"),
    "reduction": GenericTemplate("reduction"),
    "elementwise": GenericTemplate("elementwise"),
}


# Kernels their kind's template cannot handle (strided or dilated convolutions).
FALLBACKS: dict[str, Template] = {
    "conv": GenericTemplate("conv", "cpu.conv_generic"),
    "depthwise_conv": GenericTemplate("depthwise_conv", "cpu.depthwise_conv_generic"),
}


STRIDED_CONV = ConvTemplate("conv", strided=True)


def template_for(kernel: Kernel) -> Template:
    if kernel.kind in FALLBACKS and not applicable(kernel):
        return STRIDED_CONV if applicable(kernel, strided=True) else FALLBACKS[kernel.kind]
    return TEMPLATES[kernel.kind]


__all__ = ["FALLBACKS", "TEMPLATES", "ConvTemplate", "GenericTemplate", "MatmulTemplate", "Template", "template_for"]
