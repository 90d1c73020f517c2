"""The block-wise INNE scorer gives pyod INNE's scores."""

from __future__ import annotations

import numpy as np
import pytest
from pyod.models.inne import INNE

from audit_lib.detect.ensemble import FastINNE, make_member


@pytest.mark.parametrize(("n", "dims", "seed"), [(3000, 16, 0), (500, 3, 1), (9, 2, 2)])
def test_fast_inne_matches_pyod(n: int, dims: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dims))
    x[: n // 20] *= 6.0  # some outliers
    x[-3:] = x[0]  # repeated rows
    fast = FastINNE(random_state=seed).fit(x)
    ref = INNE(random_state=seed).fit(x)
    np.testing.assert_allclose(fast.decision_scores_, ref.decision_scores_, rtol=1e-12)
    new = rng.standard_normal((200, dims)) * 2.0
    np.testing.assert_allclose(fast.decision_function(new), ref.decision_function(new), rtol=1e-12)
    assert isinstance(make_member("INNE"), FastINNE)
