"""Masking of personal data (names, phone numbers, ID numbers) by role.

Only the roles that must contact or identify the customer see the clear value: station
handlers (供电所处理人) go on site and call the customer; bureau auditors (区局稽查员) arrange
it. ID numbers are shown to nobody but admins. Everyone else sees a masked value such as
``张**``, ``138****5678`` or ``5001**********1234``.
"""

from __future__ import annotations

import pandas as pd

PERSONAL_FIELDS = ("name", "phone", "id_no")

CLEAR_FIELDS: dict[str, frozenset[str]] = {
    "station_handler": frozenset({"name", "phone"}),
    "bureau_auditor": frozenset({"name", "phone"}),
    "admin": frozenset(PERSONAL_FIELDS),
}


def may_see(role: str, field: str) -> bool:
    """Whether ``role`` sees ``field`` (one of :data:`PERSONAL_FIELDS`) in clear."""
    return field in CLEAR_FIELDS.get(role, frozenset())


def mask_name(value: str | None) -> str:
    """Keep the first character of a name: ``张三丰`` → ``张**``."""
    if not value:
        return ""
    return value[0] + "*" * max(len(value) - 1, 1)


def mask_phone(value: str | None) -> str:
    """Keep the first three and last four digits: ``13812345678`` → ``138****5678``."""
    if not value:
        return ""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_id(value: str | None) -> str:
    """Keep the first four and last four characters of an ID number."""
    if not value:
        return ""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def _stars(n: pd.Series) -> pd.Series:
    return pd.Series("*", index=n.index, dtype="string").str.repeat(n.astype(int).tolist())


def mask_frame(frame: pd.DataFrame, role: str) -> pd.DataFrame:
    """A copy of ``frame`` with its personal columns masked for ``role`` (vectorised)."""
    out = frame.copy()
    for field in PERSONAL_FIELDS:
        if field not in out.columns or may_see(role, field):
            continue
        col = out[field].astype("string").fillna("")
        n = col.str.len()
        if field == "name":
            masked = col.str[:1] + _stars(n.sub(1).clip(lower=1))
        else:
            keep = 3 if field == "phone" else 4
            hidden = (n - keep - 4).clip(lower=0)
            masked = col.str[:keep] + _stars(hidden) + col.str[-4:]
            masked = masked.where(n > keep + 4, _stars(n))
        out[field] = masked.where(n > 0, "").astype(object)
    return out
