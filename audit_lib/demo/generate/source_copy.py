"""An SG186-shaped copy of the demo data in a SQL database (``audit demo-data --source-db``).

Uses :func:`audit_lib.data.source.write_source`, so ``audit ingest`` can load it back into
a mart, schema checks and rejects included: the injected data-quality faults (duplicates,
negative kWh, orphans, codes outside their lists) are in the copy too.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from audit_lib.demo.generate.bureau import BureauData
from audit_lib.demo.generate.writer import city_tables
from audit_lib.errors import ConfigError


def sqlite_url(path: Path) -> str:
    """SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{path.resolve()}"


def prepare_source(path: Path, previous: str | None) -> None:
    """Remove the copy a previous demo run wrote at ``path``; refuse any other file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if previous is not None and Path(previous).resolve() == path.resolve():
        path.unlink()
        return
    raise ConfigError(f"--source-db {path}: file exists and was not written by demo-data")


def copy_city(url: str, n_bureaus: int) -> dict[str, int]:
    """Write bureaus and tariffs to the source."""
    from audit_lib.data.source import write_source

    return write_source(url, city_tables(n_bureaus))


def copy_bureau(url: str, data: BureauData) -> dict[str, int]:
    """Write every table of one bureau, readings included, to the source."""
    from audit_lib.data.source import write_source

    months = [data.readings_month(m) for m in range(len(data.cal.month_labels))]
    return write_source(url, {**data.tables, "readings": pa.concat_tables(months)})
