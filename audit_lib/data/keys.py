"""Fast lookup of customer numbers (户号) to row positions, used by the matrix builder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


class KeyLookup:
    """Maps customer numbers to their row in the bureau's customers table, fast.

    When every ``cons_no`` is a digit string of one length (the SG186 case) the lookup runs
    on int64 with a binary search; otherwise it falls back to a pandas hash index.
    """

    def __init__(self, cons: pa.Array) -> None:
        self.size = len(cons)
        lengths = pc.utf8_length(cons)
        width = pc.min_max(lengths).as_py()
        digits = pc.all(pc.utf8_is_digit(cons)).as_py()
        self.width: int | None = None
        if self.size and digits and width["min"] == width["max"] and width["max"] <= 18:
            self.width = int(width["max"])
            keys = pc.cast(cons, pa.int64()).to_numpy()
            self.order = np.argsort(keys, kind="stable")
            self.sorted = keys[self.order]
        else:
            self.index = pd.Index(np.asarray(cons.to_numpy(zero_copy_only=False), dtype=object))

    def positions(self, values: pa.Array) -> np.ndarray:
        """Row of each value in the customers table, -1 where it is not a customer."""
        if self.width is None:
            target = pd.Index(np.asarray(values.to_numpy(zero_copy_only=False), dtype=object))
            return np.asarray(self.index.get_indexer(target), dtype=np.int64)
        ok = pc.and_(pc.equal(pc.utf8_length(values), self.width), pc.utf8_is_digit(values))
        ok_np = ok.to_numpy(zero_copy_only=False)
        out = np.full(len(values), -1, dtype=np.int64)
        if not ok_np.any():
            return out
        keys = pc.cast(pc.filter(values, ok), pa.int64()).to_numpy()
        at = np.searchsorted(self.sorted, keys)
        at[at == self.size] = 0
        found = self.sorted[at] == keys
        out[np.flatnonzero(ok_np)] = np.where(found, self.order[at], -1)
        return out
