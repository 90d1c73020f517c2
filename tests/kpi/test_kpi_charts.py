"""The charts' fonts: a style of their own, never a change of matplotlib's global settings."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import matplotlib as mpl
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure

from audit_lib.kpi.charts import chart, font_family, has_chinese_font, money_by_theme


def test_importing_the_chart_modules_changes_no_matplotlib_setting() -> None:
    code = (
        "import matplotlib as mpl, matplotlib.pyplot\n"
        "before = {k: mpl.rcParams[k] for k in mpl.rcParams}\n"
        "import audit_lib.kpi.charts, audit_lib.workflows.analysis_charts\n"
        "import audit_lib.ui.apps.charts, audit_lib.ui.apps.dashboard\n"
        "changed = [k for k in before if mpl.rcParams[k] != before[k]]\n"
        "assert not changed, changed\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_chart_carries_the_fonts_and_draws_without_a_font_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not has_chinese_font():
        pytest.skip("no CJK font installed (make test installs fonts-wqy-zenhei)")
    before = dict(mpl.rcParams)
    findings = pd.DataFrame({"theme_id": ["arrears", "peer_low"], "money_at_risk": [1e5, -2e4]})
    fig = money_by_theme(findings)
    assert dict(mpl.rcParams) == before  # the style context is gone again
    assert fig.axes[0].title.get_fontfamily() == list(font_family())
    with caplog.at_level(logging.WARNING, logger="matplotlib"):
        fig.savefig(io.BytesIO(), format="png")  # tick labels (a minus sign too) drawn now
    assert not [r for r in caplog.records if "findfont" in r.getMessage()]
    ticks = fig.axes[0].get_xticklabels()
    assert ticks and all(t.get_fontfamily() == list(font_family()) for t in ticks)


@pytest.mark.parametrize(("values", "flat"), [([3.8461, 3.8461004, 3.8460998], True),
                                              ([3.80, 3.85, 3.90], False)])  # fmt: skip
def test_float_noise_is_drawn_flat_and_a_real_change_is_not(
    values: list[float], flat: bool
) -> None:
    @chart
    def line() -> Figure:
        fig, ax = plt.subplots()
        ax.plot(values)
        return fig

    fig = line()
    low, high = fig.axes[0].get_ylim()
    plt.close(fig)
    assert low < min(values) and max(values) < high
    assert ((high - low) > 0.09 * values[0]) == flat  # ±5 % of the level, as for a constant
