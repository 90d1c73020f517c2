"""The candidates the ensemble selection (``select_ensemble.py``, ``select_ensemble_lodo.py``)
chose among: the library's members (:func:`audit_lib.detect.scoring.ensemble.make_member`) and
seven more that neither the default ensemble nor the theft score uses, kept here with the
benchmark that needs them."""

from __future__ import annotations

from typing import Any

import numpy as np
from pyod.models.cblof import CBLOF
from pyod.models.gmm import GMM
from pyod.models.loda import LODA
from pyod.models.lof import LOF
from pyod.models.pca import PCA

from audit_lib.detect.scoring.ensemble import (
    MAX_KNN_FIT_ROWS,
    MEMBER_NAMES,
    FastINNE,
    SampledKNN,
    fit_capped,
    make_member,
)

CANDIDATES: tuple[str, ...] = (
    "ECOD", "COPOD", "HBOS", "IForest", "KNN", "INNE", "PCA",
    "LOF", "CBLOF", "LODA", "GMM", "KNN_mean", "KNN_k20", "INNE_500",
)  # fmt: skip


class SampledLOF(LOF):
    """pyod LOF (20 neighbours) fitted on a random sample of at most ``max_rows`` rows.

    Below ``max_rows`` it is exactly pyod's LOF; above, the other rows are scored as new
    rows against the sample (pyod's LOF runs in novelty mode).
    """

    def __init__(
        self,
        contamination: float = 0.1,
        max_rows: int = MAX_KNN_FIT_ROWS,
        seed: int = 0,
        n_neighbors: int = 20,
    ) -> None:
        super().__init__(contamination=contamination, n_neighbors=n_neighbors)
        self.max_rows = max_rows
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> SampledLOF:
        """Fit on (a sample of) ``X``; ``decision_scores_`` covers every row of ``X``."""
        return fit_capped(self, LOF, X)


def make_candidate(name: str, *, random_state: int | None = 0, contamination: float = 0.1) -> Any:
    """One candidate of :data:`CANDIDATES` (pyod's default hyper-parameters unless the name
    says): the library's members, KNN (5 neighbours, largest distance), PCA, LOF (20
    neighbours, at most :data:`MAX_KNN_FIT_ROWS` rows fitted), CBLOF, LODA, GMM (one
    component) and INNE_500 (500 ensembles instead of 200)."""
    if name in MEMBER_NAMES:
        return make_member(name, random_state=random_state, contamination=contamination)
    seed, c = random_state, contamination
    extra: dict[str, Any] = {
        "KNN": lambda: SampledKNN(contamination=c, seed=seed or 0),
        "PCA": lambda: PCA(contamination=c, random_state=seed),
        "LOF": lambda: SampledLOF(contamination=c, seed=seed or 0),
        "CBLOF": lambda: CBLOF(contamination=c, random_state=seed),
        "LODA": lambda: LODA(contamination=c, random_state=seed),
        "GMM": lambda: GMM(contamination=c, random_state=seed),
        "INNE_500": lambda: FastINNE(contamination=c, n_estimators=500, random_state=seed),
    }
    if name not in extra:
        raise KeyError(f"unknown candidate {name!r}; known: {', '.join(CANDIDATES)}")
    return extra[name]()
