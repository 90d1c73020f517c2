"""The truth table of injected faults and legitimate changes, and who gets them.

Every injection picks its customers with :meth:`TruthLog.pick` (each customer gets at most one
injected kind, so labels never overlap) and records them with :meth:`TruthLog.add`, with the
window (first and last day affected) and a severity (size of the effect, 0..1 where a share).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from audit_lib.demo.generate.calendar import Calendar
from audit_lib.demo.generate.config import DemoConfig
from audit_lib.data.schema import TRUTH, TRUTH_KINDS


class TruthLog:
    """Labelled injections of one bureau.

    Parameters
    ----------
    config
        The generator's configuration (rates).
    bureau
        Bureau code.
    cal
        The period's calendar.
    cons_no
        Customer numbers of the bureau's customers (object array, one per row).
    """

    def __init__(self, config: DemoConfig, bureau: str, cal: Calendar, cons_no: np.ndarray):
        self.config = config
        self.bureau = bureau
        self.cal = cal
        self.cons_no = cons_no
        self.taken = np.zeros(len(cons_no), dtype=bool)
        self._parts: list[dict[str, np.ndarray]] = []

    def pick(
        self, rng: np.random.Generator, kind: str, eligible: np.ndarray, *, take: bool = True
    ) -> np.ndarray:
        """Choose the customers (row indices, sorted) that get ``kind``.

        The count is Binomial(customers, rate of ``kind``), capped by the eligible customers
        not already given another kind; the chosen are marked as taken unless ``take`` is
        false (a kind added later to the generator, so that the kinds picked after it keep
        their pools and their draws; they may then fall on the same customer).
        """
        pool = np.flatnonzero(eligible & ~self.taken)
        count = min(int(rng.binomial(len(self.taken), self.config.rate(kind))), len(pool))
        rows = np.sort(rng.choice(pool, size=count, replace=False)) if count else pool[:0]
        if take:
            self.taken[rows] = True
        return rows

    def add(
        self,
        kind: str,
        rows: np.ndarray,
        start_day: np.ndarray | int,
        end_day: np.ndarray | int,
        severity: np.ndarray | float,
        detail: np.ndarray | str | None = None,
        *,
        entities: np.ndarray | None = None,
        entity_kind: str = "customer",
    ) -> None:
        """Record ``kind`` for customers ``rows`` (or explicit ``entities``)."""
        if kind not in TRUTH_KINDS:
            raise ValueError(f"unknown truth kind {kind!r}")
        ent = self.cons_no[rows] if entities is None else np.asarray(entities, dtype=object)
        k = len(ent)
        if k == 0:
            return
        last = self.cal.days - 1
        start = np.clip(np.broadcast_to(start_day, (k,)), 0, last)
        end = np.clip(np.broadcast_to(end_day, (k,)), 0, last)
        self._parts.append(
            {
                "entity": ent,
                "entity_kind": np.full(k, entity_kind, dtype=object),
                "kind": np.full(k, kind, dtype=object),
                "start": self.cal.dates[start],
                "end": self.cal.dates[np.maximum(end, start)],
                "severity": np.round(np.broadcast_to(severity, (k,)).astype(np.float64), 4),
                "detail": np.broadcast_to(np.asarray(detail, dtype=object), (k,)),
            }
        )

    def table(self) -> pa.Table:
        """The truth rows of this bureau, schema ``TRUTH``."""
        names = [c for c in TRUTH.names if c != "bureau"]
        if not self._parts:
            return TRUTH.arrow_schema().empty_table()
        cols = {name: np.concatenate([p[name] for p in self._parts]) for name in names}
        cols["bureau"] = np.full(len(cols["entity"]), self.bureau, dtype=object)
        return pa.table(
            {c: pa.array(cols[c], type=TRUTH.column(c).type) for c in TRUTH.names},
            schema=TRUTH.arrow_schema(),
        )


def window_mask(days: int, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(k, days) bool: True where start[k] <= t <= end[k]."""
    t = np.arange(days)[None, :]
    return (t >= start[:, None]) & (t <= end[:, None])


def draw_windows(
    rng: np.random.Generator,
    k: int,
    days: int,
    start_range: tuple[float, float],
    length: tuple[int, int] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Random windows: start in ``start_range`` (shares of the period), length in days.

    ``length`` None means the window runs to the end of the period.
    """
    lo, hi = (
        int(start_range[0] * days),
        max(int(start_range[1] * days), int(start_range[0] * days) + 1),
    )
    start = rng.integers(lo, hi, k)
    if length is None:
        return start, np.full(k, days - 1)
    return start, np.minimum(start + rng.integers(length[0], length[1] + 1, k) - 1, days - 1)


def expand_windows(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every day of every window: (index of the window, day), vectorised."""
    length = np.maximum(end - start + 1, 0)
    owner = np.repeat(np.arange(len(start)), length)
    first = np.repeat(np.cumsum(length) - length, length)
    return owner, np.repeat(start, length) + np.arange(int(length.sum())) - first
