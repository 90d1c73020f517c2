"""The starter catalogue of audit themes (稽查主题).

A theme is a named, standardised audit check: what to look for, with which data and
thresholds, how severe a hit is, and how long the tasks it raises may take. Every change is a
new version; runs record the versions they used (:func:`theme_versions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from audit_lib.errors import ConfigError

Family = Literal["business", "resource", "data_quality"]
EntityKind = Literal["customer", "area"]


@dataclass(frozen=True)
class Theme:
    """One audit theme.

    Attributes
    ----------
    id
        Stable identifier, e.g. ``"zero_consumption"``.
    version
        Incremented on every change of parameters or logic.
    name_zh, name_en
        Display names.
    family
        Monitoring family: business (经营成果/工作质量), resource (供电质量/服务资源) or
        data quality (数据质量).
    entity_kind
        Whether findings are about customers or station areas.
    severity
        Default severity of a hit (``low`` / ``medium`` / ``high``).
    deadline_days
        Days a task raised by this theme may take from being raised to its archive (限时稽查):
        it travels in the findings frame, and a task's time limit (``deadline_at``) is the
        strictest of its findings'.
    params
        Typed detector parameters (thresholds, windows).
    tables
        The mart tables the theme reads (the data it needs): a run over a mart that lacks one
        skips the theme and says so.
    """

    id: str
    version: int
    name_zh: str
    name_en: str
    family: Family
    entity_kind: EntityKind
    severity: str
    deadline_days: int
    params: Mapping[str, float | int | str] = field(default_factory=dict)
    tables: tuple[str, ...] = ()

    def param(self, name: str) -> float:
        """A numeric parameter."""
        return float(self.params[name])


_THEMES: tuple[Theme, ...] = (
    Theme(
        "zero_consumption",
        1,
        "运行户零电量",
        "zero consumption while active",
        "business",
        "customer",
        "medium",
        15,
        {"min_zero_days": 30, "min_history_kwh_per_day": 0.5},
        tables=("customers", "readings"),
    ),
    Theme(
        "consumption_drop",
        1,
        "电量突变",
        "abrupt drop against own history",
        "business",
        "customer",
        "medium",
        15,
        {"recent_days": 30, "history_days": 90, "min_drop": 0.5, "min_history_kwh_per_day": 1.0},
        tables=("customers", "readings"),
    ),
    Theme(
        "peer_low",
        1,
        "同类用户持续低电量",
        "sustained low consumption against peers",
        "business",
        "customer",
        "low",
        20,
        {"window_days": 90, "max_ratio_to_peers": 0.2, "min_peers": 20},
        tables=("customers", "readings"),
    ),
    Theme(
        "theft_suspicion",
        1,
        "窃电嫌疑",
        "theft suspicion (pyod ensemble + self-supervision)",
        "business",
        "customer",
        "high",
        10,
        {"top_share": 0.01, "min_score": 0.0},
        tables=("customers", "readings"),
    ),
    Theme(
        "area_line_loss",
        1,
        "台区线损异常",
        "station-area line loss out of range",
        "resource",
        "area",
        "medium",
        20,
        {"high_loss": 0.08, "negative_loss": -0.01, "min_days": 20},
        tables=("customers", "readings", "areas"),
    ),
    Theme(
        "meter_events",
        1,
        "计量异常事件",
        "meter alarms corroborating a consumption change",
        "resource",
        "customer",
        "medium",
        15,
        {"codes": "ERC27,ERC28,ERC29,ERC30,ERC37", "window_days": 30},
        tables=("customers", "readings"),
    ),
    Theme(
        "tariff_misapplication",
        1,
        "电价执行错误",
        "tariff misapplication",
        "business",
        "customer",
        "high",
        15,
        {"amount_tolerance": 0.01},
        tables=("customers", "bills", "tariffs"),
    ),
    Theme(
        "multiplier_anomaly",
        2,
        "倍率异常",
        "meter multiplier anomaly",
        "business",
        "customer",
        "high",
        15,
        {
            "tolerance": 0.2,
            "min_z": 4.5,
            "segments": 4,
            "ct_low": 1.0,
            "ct_high": 3.0,
            "step_days": 30,
            "step_min_days": 15,
            "step_standard_tol": 0.1,
            "step_min_z": 4.0,
        },
        tables=("customers", "readings", "meters"),
    ),
    Theme(
        "over_capacity",
        1,
        "超容用电",
        "demand above contracted capacity",
        "business",
        "customer",
        "medium",
        20,
        {"over_ratio": 1.05, "power_factor": 0.9},
        tables=("customers", "bills"),
    ),
    Theme(
        "arrears",
        1,
        "电费欠费",
        "arrears and overdue payments",
        "business",
        "customer",
        "low",
        30,
        {"overdue_days": 30, "min_amount": 1.0},
        tables=("customers", "bills", "payments"),
    ),
    Theme(
        "repeated_complaints",
        1,
        "重复投诉",
        "repeated 95598 complaints",
        "resource",
        "customer",
        "low",
        15,
        {"window_days": 90, "min_complaints": 3},
        tables=("customers", "tickets"),
    ),
    Theme(
        "data_quality",
        2,
        "数据质量",
        "data quality: missing, negative, absurd, duplicated, backwards, orphans, bad codes",
        "data_quality",
        "customer",
        "low",
        10,
        {"min_missing_days": 3, "min_missing_supply_days": 1},
        tables=("customers", "readings"),
    ),
)

CATALOGUE: Mapping[str, Theme] = MappingProxyType({t.id: t for t in _THEMES})


def get_theme(theme_id: str) -> Theme:
    """Look up a published theme by id.

    Raises
    ------
    KeyError
        With the list of known ids, if ``theme_id`` is unknown.
    """
    try:
        return CATALOGUE[theme_id]
    except KeyError:
        raise KeyError(f"unknown theme {theme_id!r}; known: {', '.join(CATALOGUE)}") from None


def with_params(theme: Theme, params: Mapping[str, float | int | str] | None) -> Theme:
    """``theme`` with some parameters replaced (unknown names are an error)."""
    if not params:
        return theme
    unknown = set(params) - set(theme.params)
    if unknown:
        raise KeyError(f"theme {theme.id} has no parameter {sorted(unknown)[0]!r}")
    return replace(theme, params=MappingProxyType({**theme.params, **params}))


def checked_params(
    theme_id: str, params: Mapping[str, object], *, source: str = "<parameters>"
) -> dict[str, float | int | str]:
    """``params`` of theme ``theme_id`` if the catalogue knows the theme and every name, and
    each value has the type of the catalogue's default (a whole number is a fine float).

    Raises
    ------
    ConfigError
        Naming ``source``, the theme and the parameter.
    """
    if theme_id not in CATALOGUE:
        raise ConfigError(f"{source}: unknown theme {theme_id!r} (known: {', '.join(CATALOGUE)})")
    defaults = CATALOGUE[theme_id].params
    out: dict[str, float | int | str] = {}
    for name, value in params.items():
        if name not in defaults:
            raise ConfigError(f"{source}.{theme_id}: unknown parameter {name!r} "
                              f"(known: {', '.join(defaults)})")  # fmt: skip
        default = defaults[name]
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        ok = isinstance(value, str) if isinstance(default, str) else numeric and (
            isinstance(default, float) or isinstance(value, int)
        )  # fmt: skip
        if not ok:
            raise ConfigError(f"{source}.{theme_id}.{name}: must be {type(default).__name__} "
                              f"like the catalogue's {default!r}, got {value!r}")  # fmt: skip
        out[str(name)] = value  # type: ignore[assignment]
    return out


def theme_versions(theme_ids: list[str] | None = None) -> dict[str, int]:
    """Versions of the given (default: all) themes, for run manifests."""
    ids = theme_ids if theme_ids is not None else list(CATALOGUE)
    return {i: get_theme(i).version for i in ids}
