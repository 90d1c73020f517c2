"""``audit demo-data``: generate a realistic demo utility with a truth table."""

from __future__ import annotations

import os
from pathlib import Path

import click

from audit_lib.errors import ConfigError


@click.command("demo-data")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder: mart/, truth.parquet, manifest.json.",
)
@click.option(
    "--bureaus",
    type=int,
    default=5,
    show_default=True,
    help="Number of supply bureaus (区供电局), the first N of Chongqing's.",
)
@click.option(
    "--customers",
    type=int,
    default=20_000,
    show_default=True,
    help="Customers in the whole city, split unevenly across bureaus.",
)
@click.option("--days", type=int, default=730, show_default=True, help="Days of data.")
@click.option("--start", default="2024-01-01", show_default=True, help="First day, YYYY-MM-DD.")
@click.option(
    "--seed",
    type=int,
    default=7,
    show_default=True,
    help="Random seed: same seed and options give identical files.",
)
@click.option(
    "--anomaly-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiply every default injection rate (0 = clean data).",
)
@click.option(
    "--jobs",
    type=int,
    default=0,
    show_default=True,
    help="Bureaus generated in parallel processes; 0 = one per CPU, at most 4. "
    "The output does not depend on it.",
)
@click.option(
    "--source-db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write an SG186-shaped SQLite copy (for audit ingest); slower.",
)
def demo_data(
    out: Path,
    bureaus: int,
    customers: int,
    days: int,
    start: str,
    seed: int,
    anomaly_scale: float,
    jobs: int,
    source_db: Path | None,
) -> None:
    """生成演示数据 / Generate a demo data set: a Chongqing-like utility with labelled faults."""
    from audit_lib.demo.generate import DEFAULT_RATES, DemoConfig, generate_demo, parse_date

    if anomaly_scale < 0:
        raise ConfigError(f"--anomaly-scale must be >= 0, got {anomaly_scale}")
    if jobs < 0:
        raise ConfigError(f"--jobs must be >= 0, got {jobs}")
    jobs = jobs or min(os.cpu_count() or 1, 4)
    rates = {k: min(0.2, v * anomaly_scale) for k, v in DEFAULT_RATES.items()}
    config = DemoConfig(
        bureaus=bureaus,
        customers=customers,
        days=days,
        start=parse_date(start),
        seed=seed,
        rates=rates,
    )
    summary = generate_demo(out, config, jobs=jobs, source_db=source_db)
    click.echo(
        f"演示数据已生成 / demo data written: {summary.out_dir} — "
        f"{customers:,} customers, {summary.rows['readings']:,} readings, "
        f"{summary.truth_rows:,} labelled faults, {summary.seconds:.1f} s"
    )


@click.group("mart")
def mart() -> None:
    """数据集市 / The data mart."""


@mart.command("verify")
@click.option("--mart", "mart_dir", required=True, type=click.Path(file_okay=False),
              help="mart folder")  # fmt: skip
@click.option("--full", is_flag=True, help="also compare every file's SHA-256 (reads it all)")
def mart_verify(mart_dir: str, full: bool) -> None:
    """核对集市文件 / Check the mart's files against its manifest (exit 1 on a difference)."""
    from audit_lib.data.integrity import read_manifest, verify_mart

    problems = verify_mart(mart_dir, full=full)
    for line in problems:
        click.echo(line, err=True)
    if problems:
        raise SystemExit(1)
    listed = len(read_manifest(mart_dir) or {})
    click.echo(
        f"集市完整 mart OK: {listed} files as recorded" + (", contents hashed" if full else "")
    )
