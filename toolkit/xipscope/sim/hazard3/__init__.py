"""The twin of one Hazard3 core on an RP2350 (a model); see core.py for what is modelled and how."""

from .core import Machine, RunResult

__all__ = ["Machine", "RunResult"]
