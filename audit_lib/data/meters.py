"""Facts of the meters table (计量装置): which meters replaced another (换表)."""

from __future__ import annotations

import pandas as pd


def later_meters(meters: pd.DataFrame) -> pd.DataFrame:
    """The meters that replaced another (each customer's meters after its first, by
    installation), with the multiplier of the one before (``previous``) when the table has
    multipliers."""
    many = meters[meters["cons_no"].duplicated(keep=False)]  # a few customers per thousand
    many = many.sort_values(["cons_no", "install_date"], kind="stable")  # a copy
    by_customer = many.groupby("cons_no")
    if "multiplier" in many:
        many["previous"] = by_customer["multiplier"].shift()
    return many[by_customer.cumcount().to_numpy() > 0]
