"""The demo city's bureaus: the first N of the city's list, ``parameters/bureaus/`` of this
checkout in the city's order (``seq``). Bureau number ``i`` (0-based) seeds its own random
streams and numbers its customers, so the same N give the same city."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from audit_lib.runs.params import BureauParams, city_bureaus

PARAMETERS_DIR = Path(__file__).resolve().parents[3] / "parameters"
"""This checkout's parameter folder, wherever the generator is started from."""


@cache
def all_bureaus() -> tuple[BureauParams, ...]:
    """Every bureau of the city, in its order (read once per process)."""
    return tuple(city_bureaus(PARAMETERS_DIR))


def demo_bureau(index: int) -> BureauParams:
    """Bureau number ``index`` (0-based) of the city."""
    return all_bureaus()[index]
