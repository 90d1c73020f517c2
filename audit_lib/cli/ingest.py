"""``audit ingest``, ``audit load-sgcc`` and ``audit dq``: fill the mart and check it."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("ingest")
@click.option("--source", "source", required=True, help="Source database URL (SG186-shaped).")
@click.option("--mart", "mart", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Mart folder.")  # fmt: skip
@click.option("--period", default=None, help="Months to load, e.g. 2025-01..2025-03.")
@click.option("--bureau", "bureaus", multiple=True, help="Bureau code (repeatable).")
@click.option("--chunk-rows", default=200_000, show_default=True, type=int)
@click.option("--today", default=None, help="Latest acceptable date (default: today), YYYY-MM-DD.")
def ingest(
    source: str,
    mart: Path,
    period: str | None,
    bureaus: tuple[str, ...],
    chunk_rows: int,
    today: str | None,
) -> None:
    """入库: load the source system into the mart, printing the ingest report.

    Rows that break the schema go to <mart>/_rejects; a missing table or column stops the
    ingest (exit status 2) before anything is written.
    """
    from audit_lib.data.ingest import ingest as run_ingest
    from audit_lib.data.periods import to_date

    report = run_ingest(source, mart, period=period, bureaus=list(bureaus) or None,
                        chunk_rows=chunk_rows,
                        today=to_date(today, name="today") if today else None)  # fmt: skip
    click.echo(str(report))


@click.command("load-sgcc")
@click.argument("csv", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mart", "mart", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--labels", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write cons_no,flag (.csv or .parquet).")  # fmt: skip
def load_sgcc(csv: Path, mart: Path, labels: Path) -> None:
    """载入SGCC数据集: load the public SGCC theft data set into the mart (bureau SGCC)."""
    from audit_lib.data.sgcc import load_sgcc as run_load

    result = run_load(csv, mart, labels)
    click.echo(
        f"SGCC: {result.customers} 户 customers × {result.days} 天 days, "
        f"{result.readings} readings, {result.missing_share:.1%} missing, "
        f"{result.duplicate_rows} duplicate rows dropped, {result.bad_values} unreadable values, "
        f"{result.thieves} 窃电 labelled theft → labels {result.labels}"
    )


@click.command("dq")
@click.option("--mart", "mart", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--bureau", default=None, help="Bureau code (default: all).")
@click.option("--check", "checks", multiple=True, help="Only this check (repeatable).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write every hit to this CSV or Parquet file.",
)
@click.option(
    "--source", default=None, help="Also reconcile with this source database URL (与源系统核对)."
)
@click.option("--period", default=None, help="With --source: the months, as the ingest's.")
@click.option("--today", default=None, help="With --source: the ingest's --today.")  # fmt: skip
def dq(
    mart: Path,
    bureau: str | None,
    checks: tuple[str, ...],
    out: Path | None,
    source: str | None,
    period: str | None,
    today: str | None,
) -> None:
    """数据质量核查: run the data-quality checks and print hits per check."""
    import pandas as pd

    from audit_lib.data.access import Mart
    from audit_lib.data.periods import to_date
    from audit_lib.data.quality import run_checks, summarize
    from audit_lib.data.reconcile import reconcile

    with Mart(mart) as m:
        hits = run_checks(m, bureau, list(checks) or None)
        if source is not None:
            found = reconcile(source, m, period=period, bureaus=[bureau] if bureau else None,
                              today=to_date(today, name="today") if today else None)  # fmt: skip
            hits = pd.concat([hits, found], ignore_index=True) if len(found) else hits
    click.echo(summarize(hits, reconciled=source is not None).to_string(index=False))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".parquet":
            hits.to_parquet(out, index=False)
        else:
            hits.to_csv(out, index=False)
