"""Schedules: per-kernel transform-dialect templates whose parameters are named knobs.

find kernels (kernels.py) -> search space and default per kernel (templates/) -> validate the
requested configuration (space.py) -> transform script (script.py) -> interpreter (apply.py).
"""

from woodpecker.kernels.space import Config, Constraint, InvalidConfigError, Knob, SearchSpace
from woodpecker.schedule.apply import ScheduledKernel, apply_schedules, plan_schedules, schedule_scripts
from woodpecker.schedule.kernels import KINDS, Kernel, find_kernels
from woodpecker.schedule.target import CpuMachine

__all__ = [
    "KINDS",
    "Config",
    "Constraint",
    "CpuMachine",
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
