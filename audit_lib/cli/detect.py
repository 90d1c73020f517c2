"""``audit score``: the theft-suspicion score from daily readings alone."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from audit_lib.errors import DataError


def read_readings(path: Path) -> pd.DataFrame:
    """Read a readings Parquet file; unreadable or empty files raise :class:`DataError`."""
    if not path.exists():
        raise DataError("readings file not found", file=str(path))
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"not a readable Parquet file: {exc}", file=str(path)) from exc
    if table.num_rows == 0:
        raise DataError("no readings (empty file)", file=str(path))
    return table.to_pandas()


@click.command("score")
@click.option(
    "--readings",
    "readings_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Parquet: cons_no (string), date (date), kwh (float, NaN = missing).",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Parquet to write: one row per cons_no with score and reason.",
)
@click.option("--top", default=10, show_default=True, help="Rows of the ranking to print.")
def score(readings_path: Path, out_path: Path, top: int) -> None:
    """窃电嫌疑评分 / Theft-suspicion score from daily readings (unsupervised)."""
    from audit_lib.detect.scoring.theft import score_readings

    readings = read_readings(readings_path)
    result = score_readings(readings, source=str(readings_path))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result.to_parquet(out_path, index=False)
    scored = int((result["status"] == "scored").sum())
    click.echo(f"scored {scored} of {len(result)} customers → {out_path}")
    for row in result.head(top).itertuples(index=False):
        click.echo(f"{row.rank:>5}  {row.cons_no}  {row.score:.3f}  {row.reason}")
