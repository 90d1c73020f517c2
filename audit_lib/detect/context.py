"""What every theme detector receives: a bureau's data over a period, the run's theme
parameters, and a place to leave side results.

The inputs themselves (customers, the customers × days matrix, open days, meters, alarms) are
those of :class:`~audit_lib.data.view.BureauView`, read once per context and shared by every
theme; inputs that several themes derive (the areas' energy balance, the replacement steps)
are built once through :meth:`~audit_lib.data.view.BureauView.shared`, so no theme imports
another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from audit_lib.data.view import BureauView
from audit_lib.themes.catalogue import Theme, get_theme, with_params


@dataclass
class DetectionContext(BureauView):
    """Inputs of one detection run: a :class:`~audit_lib.data.view.BureauView` with the run's
    theme parameters (``overrides``) and the side results themes leave (``extras``)."""

    overrides: Mapping[str, Mapping[str, float | int | str]] = field(default_factory=dict)
    """Theme parameters replaced for this run, by theme id (see :meth:`theme`)."""
    extras: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    """Side results a theme leaves for the caller (e.g. every customer's theft score)."""

    def theme(self, theme_id: str) -> Theme:
        """The catalogue theme with this run's parameters: the one a theme detector gets, and
        what a theme reads of another (the theft theme leaves the zero theme's runs and the
        multiplier theme's confirmed steps out of its score, by their parameters)."""
        return with_params(get_theme(theme_id), self.overrides.get(theme_id))
