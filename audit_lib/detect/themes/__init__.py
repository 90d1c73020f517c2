"""Theme detectors: one function per theme, ``(DetectionContext, Theme) -> hits``.

The contract of a theme detector (checked for every entry of :data:`THEME_DETECTORS` by one
parametrised test): it reads only through the context, never loops over customers in Python,
and returns either an empty frame or one row per entity with ``entity``, ``score`` (finite,
higher = worse), ``reason_zh``, ``reason_en`` and ``evidence``, and optionally
``station_id``, ``area_id``, ``kwh_at_risk``, ``money_at_risk``, ``severity``.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from audit_lib.detect.context import DetectionContext
from audit_lib.detect.themes.area_line_loss import detect_area_line_loss
from audit_lib.detect.themes.arrears import detect_arrears
from audit_lib.detect.themes.consumption_drop import detect_consumption_drop
from audit_lib.detect.themes.data_quality import detect_data_quality
from audit_lib.detect.themes.meter_events import detect_meter_events
from audit_lib.detect.themes.multiplier_anomaly import detect_multiplier_anomaly
from audit_lib.detect.themes.over_capacity import detect_over_capacity
from audit_lib.detect.themes.peer_low import detect_peer_low
from audit_lib.detect.themes.repeated_complaints import detect_repeated_complaints
from audit_lib.detect.themes.tariff_misapplication import detect_tariff_misapplication
from audit_lib.detect.themes.theft_suspicion import detect_theft_suspicion
from audit_lib.detect.themes.zero_consumption import detect_zero_consumption
from audit_lib.themes.catalogue import Theme

ThemeDetector = Callable[[DetectionContext, Theme], pd.DataFrame]

THEME_DETECTORS: dict[str, ThemeDetector] = {
    "zero_consumption": detect_zero_consumption,
    "consumption_drop": detect_consumption_drop,
    "peer_low": detect_peer_low,
    "theft_suspicion": detect_theft_suspicion,
    "area_line_loss": detect_area_line_loss,
    "meter_events": detect_meter_events,
    "tariff_misapplication": detect_tariff_misapplication,
    "multiplier_anomaly": detect_multiplier_anomaly,
    "over_capacity": detect_over_capacity,
    "arrears": detect_arrears,
    "repeated_complaints": detect_repeated_complaints,
    "data_quality": detect_data_quality,
}
