"""Schedules: per-kernel transform-dialect templates whose parameters are named knobs.

find kernels (kernels.py) -> search space and default per kernel (templates/) -> validate the
requested configuration (space.py) -> transform script (script.py) -> interpreter (apply.py).
"""

from woodpecker.schedule.apply import ScheduledKernel, apply_schedules, plan_schedules, schedule_scripts
from woodpecker.schedule.kernels import KINDS, Kernel, find_kernels
from woodpecker.schedule.space import Config, Constraint, InvalidConfigError, Knob, SearchSpace
from woodpecker.schedule.target import CpuTarget

__all__ = [
    "KINDS",
    "Config",
    "Constraint",
    "CpuTarget",
    "InvalidConfigError",
    "Kernel",
    "Knob",
    "ScheduledKernel",
    "SearchSpace",
    "apply_schedules",
    "find_kernels",
    "plan_schedules",
    "schedule_scripts",
]
