"""The detector contract and the scores-to-frame adapter.

Every detector of the workbench subclasses :class:`pyod.models.base.BaseDetector`:

- ``__init__`` only stores its arguments (so ``get_params`` / ``sklearn.clone`` round-trip);
- ``fit(X)`` does all the work, sets ``decision_scores_`` (higher = more anomalous),
  ``threshold_`` and ``labels_`` (0 = normal, 1 = anomalous) and returns ``self``;
- fitted attributes end in ``_``; ``decision_function`` / ``predict`` before ``fit`` raise
  :class:`sklearn.exceptions.NotFittedError`;
- the class attribute ``input_kind`` says what ``X`` is: ``"tabular"`` (rows × features) or
  ``"daily_matrix"`` (customers × days of kWh, NaN = missing).

Notebooks never handle raw arrays: :func:`scores_frame` turns scores and reasons into a
frame keyed by customer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pyod.models.base import BaseDetector

from audit_lib.data.schema import CONS_NO
from audit_lib.errors import DataError

InputKind = Literal["tabular", "daily_matrix"]

SCORE = "score"
RANK = "rank"
REASON = "reason"


def finalise_scores(detector: BaseDetector, scores: np.ndarray) -> None:
    """Set ``decision_scores_``, ``threshold_`` and ``labels_`` from training scores.

    ``threshold_`` is the ``1 - contamination`` quantile of the scores; ``labels_`` is 1
    above it. This is pyod's own rule, kept in one place for our detectors.
    """
    detector.decision_scores_ = np.asarray(scores, dtype=np.float64)
    detector._process_decision_scores()


def as_text(values: np.ndarray) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """``values.astype(str)`` for a frame column; an object array of strings goes in as it is
    (through a numpy unicode array, 10⁶ reasons cost 0.8 s more)."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return pd.array(values, dtype="str")
    return values.astype(str)


def scores_frame(
    keys: Sequence[str] | np.ndarray | pd.Index,
    scores: np.ndarray,
    reasons: Sequence[str] | np.ndarray | None = None,
    *,
    key_name: str = CONS_NO,
) -> pd.DataFrame:
    """Turn per-customer scores (and reasons) into a frame keyed by customer.

    Parameters
    ----------
    keys
        Customer numbers (户号), one per score.
    scores
        Scores, higher = more suspicious. NaN scores (customers that could not be scored)
        sort last.
    reasons
        Optional one-line reasons, one per score.
    key_name
        Name of the key column.

    Returns
    -------
    pandas.DataFrame
        Columns ``key_name``, ``score``, ``rank`` (1 = most suspicious) and ``reason`` when
        given, sorted by descending score.

    Raises
    ------
    DataError
        If the lengths differ or a key is repeated.
    """
    key_arr = np.asarray(keys, dtype=object)
    score_arr = np.asarray(scores, dtype=np.float64)
    if key_arr.shape != score_arr.shape or key_arr.ndim != 1:
        raise DataError(
            f"{len(key_arr)} keys but {len(score_arr)} scores; expected one score per key",
            field=key_name,
        )
    frame = pd.DataFrame({key_name: as_text(key_arr), SCORE: score_arr})
    if frame[key_name].duplicated().any():
        dup = frame.loc[frame[key_name].duplicated(), key_name].iloc[0]
        raise DataError("customer key repeated", field=key_name, row=str(dup))
    if reasons is not None:
        reason_arr = np.asarray(reasons, dtype=object)
        if reason_arr.shape != key_arr.shape:
            raise DataError(f"{len(reason_arr)} reasons for {len(key_arr)} keys", field=REASON)
        frame[REASON] = as_text(reason_arr)
    frame = frame.sort_values(SCORE, ascending=False, na_position="last", kind="stable")
    frame[RANK] = np.arange(1, len(frame) + 1)
    return frame.reset_index(drop=True)
