"""``audit detect`` and ``audit evaluate-detection``: run audit themes over the mart."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from audit_lib.errors import DataError


@click.command("detect")
@click.option(
    "--mart", "mart_dir", required=True, type=click.Path(file_okay=False), help="mart folder"
)
@click.option("--bureau", required=True, help="bureau code, e.g. YZ")
@click.option("--period", required=True, help="e.g. 2025-01..2025-12")
@click.option("--themes", default=None, help="comma-separated theme ids (default: all)")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="findings .parquet")
@click.option("--run-id", default=None, help="run id recorded on each finding")
def detect_command(
    mart_dir: str, bureau: str, period: str, themes: str | None, out: str, run_id: str | None
) -> None:
    """Run audit themes for one bureau and period; write findings (稽查发现) to Parquet."""
    from audit_lib.data.access import Mart
    from audit_lib.data.periods import months_between, parse_period
    from audit_lib.detect.run import detect

    start, end = parse_period(period)
    with Mart(mart_dir) as mart:
        if bureau not in mart.bureau_codes():
            raise DataError(f"bureau {bureau!r} is not in the mart", file=mart_dir, field="bureau")
        result = detect(
            mart, bureau, start, end, themes.split(",") if themes else None, run_id=run_id
        )
        readings = mart.sql(
            "SELECT count(*) AS n FROM readings WHERE bureau = ? AND month IN "
            "(SELECT unnest(?::VARCHAR[])) AND date BETWEEN ? AND ?",
            [bureau, months_between(start, end), start, end],
        )["n"].iloc[0]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    result.findings.to_parquet(out, index=False)
    click.echo(result.summary().to_string(index=False))
    click.echo(f"{len(result.findings)} findings → {out}")
    for theme_id, missing in result.skipped.items():
        click.echo(f"warning: theme {theme_id} skipped: the mart holds no {', '.join(missing)}",
                   err=True)  # fmt: skip
    if not readings:  # "0 findings" over no data is not a clean bill of health
        click.echo(
            f"warning: the mart holds no readings of bureau {bureau} in {start}..{end}: "
            "the themes over consumption had nothing to look at",
            err=True,
        )


@click.command("evaluate-detection")
@click.option(
    "--mart", "mart_dir", required=True, type=click.Path(file_okay=False), help="mart folder"
)
@click.option("--truth", default=None, type=click.Path(dir_okay=False),
              help="truth table (default: truth.parquet beside the mart)")  # fmt: skip
@click.option("--period", default=None, help="default: the whole period of the readings")
@click.option("--bureau", "bureaus", multiple=True, help="bureau code (default: all)")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")
def evaluate_command(
    mart_dir: str, truth: str | None, period: str | None, bureaus: tuple[str, ...], as_json: bool
) -> None:
    """Score every theme against the truth table: precision, recall, F1; theft ROC-AUC, AP,
    precision@100, MAP@100/200."""
    from audit_lib.data.access import Mart
    from audit_lib.data.periods import parse_period
    from audit_lib.detect.evaluate import theft_ranking, theme_scores, truth_in_period
    from audit_lib.detect.run import detect

    truth_path = Path(truth) if truth else Path(mart_dir).parent / "truth.parquet"
    if not truth_path.exists():
        raise DataError("truth table not found", file=str(truth_path))
    table = pd.read_parquet(truth_path)
    findings, scores, truths = [], [], []
    with Mart(mart_dir) as mart:
        if period:
            start, end = parse_period(period)
        else:
            span = mart.sql("SELECT min(date) AS s, max(date) AS e FROM readings")
            start = pd.Timestamp(span["s"].iloc[0]).date()
            end = pd.Timestamp(span["e"].iloc[0]).date()
        for bureau in bureaus or mart.bureau_codes():
            result = detect(mart, bureau, start, end)
            findings.append(result.findings)
            if "theft_scores" in result.extras:
                scores.append(result.extras["theft_scores"].assign(bureau=bureau))
            truths.append(truth_in_period(table, bureau, start, end))
    all_truth = pd.concat(truths, ignore_index=True)
    themes = theme_scores(pd.concat(findings, ignore_index=True), all_truth)
    theft = theft_ranking(pd.concat(scores, ignore_index=True), all_truth) if scores else {}
    if as_json:
        click.echo(json.dumps({"themes": themes.to_dict("records"), "theft": theft}, indent=2))
        return
    click.echo(f"period {start}..{end}")
    click.echo(themes.round(3).to_string(index=False))
    click.echo(
        "theft score: "
        + ", ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in theft.items()
        )
    )
