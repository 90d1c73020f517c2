"""Deadlines per state (限时稽查), with per-theme overrides.

A :class:`DeadlinePolicy` maps each open state to the number of days a task may stay in it.
Themes may override some states (there is no theme catalogue here: pass a mapping, or a YAML
file of the form ``{default: {state: days}, themes: {theme_id: {state: days}}}``). A task with
findings of several themes gets the strictest (shortest) deadline among them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audit_lib.errors import ConfigError
from audit_lib.tasks.machine import OPEN_STATES

DEFAULT_DAYS: dict[str, float] = {
    "new": 2,
    "dispatched": 2,
    "handling": 10,
    "result_submitted": 2,
    "under_review": 5,
    "approved": 3,
    "rectification_required": 3,
    "rectifying": 15,
    "rectification_submitted": 2,
    "appealed": 7,
}

NEAR_FRACTION = 0.2  # "near deadline" = the last 20 % of the window
ESCALATION_LEVELS: tuple[tuple[str, str], ...] = (
    ("供电所", "station"),
    ("区供电局", "bureau"),
    ("市公司", "city"),
)


def _check_days(where: str, days: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for state, value in days.items():
        if state not in OPEN_STATES:
            raise ConfigError(f"{where}: unknown state {state!r} (期限配置中的状态未知)")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}.{state}: days must be a number, got {value!r}") from None
        if number <= 0:
            raise ConfigError(f"{where}.{state}: days must be > 0, got {value!r}")
        out[state] = number
    return out


@dataclass(frozen=True)
class DeadlinePolicy:
    """Days allowed per state, and per-theme overrides.

    Parameters
    ----------
    default
        Days per state; states missing fall back to :data:`DEFAULT_DAYS`.
    themes
        ``{theme_id: {state: days}}`` overrides.
    """

    default: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_DAYS))
    themes: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> DeadlinePolicy:
        """Build a policy from ``{default: {...}, themes: {...}}`` (both optional)."""
        data = data or {}
        unknown = set(data) - {"default", "themes"}
        if unknown:
            raise ConfigError(f"deadline config: unknown keys {sorted(unknown)}")
        default = {**DEFAULT_DAYS, **_check_days("default", data.get("default") or {})}
        themes = {
            str(theme): _check_days(f"themes.{theme}", days or {})
            for theme, days in (data.get("themes") or {}).items()
        }
        return cls(default=default, themes=themes)

    @classmethod
    def from_yaml(cls, path: str | Path) -> DeadlinePolicy:
        """Read a policy from a YAML file."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read deadline config {path}: {exc}") from exc
        if data is not None and not isinstance(data, Mapping):
            raise ConfigError(f"deadline config {path} must be a mapping")
        return cls.from_mapping(data)

    def days_for(self, state: str, themes: Iterable[str] = ()) -> float | None:
        """Days allowed in ``state`` for a task of ``themes`` (None for final states)."""
        if state not in OPEN_STATES:
            return None
        candidates = [self.default.get(state, DEFAULT_DAYS[state])]
        candidates += [self.themes[t][state] for t in themes if state in self.themes.get(t, {})]
        return min(candidates)

    def due_at(self, state: str, themes: Iterable[str], start: dt.datetime) -> dt.datetime | None:
        """When a task entering ``state`` at ``start`` becomes overdue."""
        days = self.days_for(state, themes)
        return None if days is None else start + dt.timedelta(days=days)

    def near_at(self, state: str, themes: Iterable[str], start: dt.datetime) -> dt.datetime | None:
        """From when a task in ``state`` counts as near its deadline (临期)."""
        days = self.days_for(state, themes)
        if days is None:
            return None
        return start + dt.timedelta(days=days * (1 - NEAR_FRACTION))


def split_themes(themes: str) -> list[str]:
    """The theme ids of a task's comma-separated ``themes`` column."""
    return [t for t in themes.split(",") if t]
