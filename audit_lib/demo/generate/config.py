"""Parameters of the demo-data generator, checked once, and the split of customers by bureau."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from audit_lib.data.schema import TRUTH_KINDS
from audit_lib.demo.generate.city import all_bureaus
from audit_lib.errors import ConfigError

# Share of ALL customers of a bureau that receive each injected kind (capped by how many
# customers are eligible, e.g. only CT-metered customers can have a wrong multiplier).
DEFAULT_RATES: Mapping[str, float] = MappingProxyType(
    {
        "theft_constant_fraction": 0.003,
        "theft_random_fraction": 0.003,
        "theft_onoff_bypass": 0.003,
        "theft_flattened": 0.003,
        "theft_capped": 0.003,
        "zero_while_active": 0.004,
        "tariff_invalid_for_class": 0.002,
        "bill_amount_mismatch": 0.003,
        "wrong_multiplier": 0.002,
        "multiplier_not_updated": 0.002,
        "over_capacity": 0.003,
        "arrears": 0.008,
        "repeated_complaints": 0.002,
        "dq_missing_readings": 0.006,
        "dq_negative_reading": 0.002,
        "dq_duplicate_reading": 0.002,
        "dq_register_backwards": 0.002,
        "dq_orphan": 0.001,
        "dq_bad_code": 0.002,
        "dq_absurd_reading": 0.001,
        "legit_vacancy": 0.008,
        "legit_move_out": 0.006,
        "legit_move_in": 0.008,
        "legit_meter_replacement": 0.005,
    }
)

# Share of station areas whose transformer meter misses a run of days (not computable).
AREA_SUPPLY_GAP_RATE = 0.02
# Background AMI collection failures: isolated single days (collection success ~99.9 %).
BACKGROUND_MISSING_RATE = 0.001

MAX_CUSTOMERS_PER_BUREAU = 9_999_999  # cons_no keeps 7 digits for the sequence


@dataclass(frozen=True)
class DemoConfig:
    """What to generate.

    Parameters
    ----------
    bureaus
        Number of supply bureaus (the first ``bureaus`` of the city's list, ``parameters/bureaus/``).
    customers
        Customers in the whole city, split unevenly across bureaus.
    days
        Length of the period, in days.
    start
        First day of the period.
    seed
        Seed of every random draw: the same config gives the same files.
    rates
        Injection rate per truth kind (share of a bureau's customers), see ``DEFAULT_RATES``.
    """

    bureaus: int = 5
    customers: int = 20_000
    days: int = 730
    start: dt.date = dt.date(2024, 1, 1)
    seed: int = 7
    rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))

    def __post_init__(self) -> None:
        check_config(self)

    @property
    def end(self) -> dt.date:
        """Last day of the period (inclusive)."""
        return self.start + dt.timedelta(days=self.days - 1)

    def rate(self, kind: str) -> float:
        """Injection rate of ``kind`` (0 when not set)."""
        return float(self.rates.get(kind, 0.0))

    def as_dict(self) -> dict[str, object]:
        """Plain parameters, for the manifest."""
        return {
            "bureaus": self.bureaus,
            "customers": self.customers,
            "days": self.days,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "seed": self.seed,
            "rates": dict(sorted(self.rates.items())),
        }


def check_config(config: DemoConfig) -> None:
    """Raise :class:`ConfigError` naming the first bad parameter."""
    most = len(all_bureaus())
    if not 1 <= config.bureaus <= most:
        raise ConfigError(f"--bureaus must be between 1 and {most}, got {config.bureaus}")
    if config.customers < config.bureaus:
        raise ConfigError(
            f"--customers must be at least the number of bureaus ({config.bureaus}), "
            f"got {config.customers}"
        )
    if config.customers > MAX_CUSTOMERS_PER_BUREAU * config.bureaus:
        raise ConfigError(f"--customers is too large: {config.customers}")
    if not 28 <= config.days <= 3660:
        raise ConfigError(f"--days must be between 28 and 3660, got {config.days}")
    if not (config.start.year >= 2000 and config.end.year <= 2035):
        raise ConfigError(
            "--start and --days must keep the period within 2000-01-01..2035-12-31, "
            f"got {config.start}..{config.end}"
        )
    if config.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {config.seed}")
    for kind, value in config.rates.items():
        if kind not in TRUTH_KINDS:
            raise ConfigError(f"unknown anomaly kind {kind!r} in rates")
        if not 0.0 <= value <= 0.2:
            raise ConfigError(f"rate of {kind} must be between 0 and 0.2, got {value}")


def parse_date(text: str, *, option: str = "--start") -> dt.date:
    """Parse ``YYYY-MM-DD``; raise :class:`ConfigError` naming the option otherwise."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} must be a date like 2024-01-01, got {text!r}") from None


def bureau_sizes(config: DemoConfig) -> np.ndarray:
    """Customers per bureau: uneven (urban cores larger), summing to ``config.customers``.

    Returns
    -------
    numpy.ndarray
        int64 array of length ``config.bureaus``, every entry >= 1.
    """
    rng = np.random.default_rng([config.seed, 1_000_003])
    weights = rng.lognormal(0.0, 0.45, config.bureaus)
    n_free = config.customers - config.bureaus
    raw = weights / weights.sum() * n_free
    sizes = np.floor(raw).astype(np.int64)
    remainder = n_free - int(sizes.sum())
    sizes[np.argsort(-(raw - sizes), kind="stable")[:remainder]] += 1
    sizes += 1
    if sizes.max() > MAX_CUSTOMERS_PER_BUREAU:
        raise ConfigError(f"--customers is too large for {config.bureaus} bureaus")
    return sizes
