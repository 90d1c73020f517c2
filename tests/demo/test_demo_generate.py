"""The demo-data generator's contract: files, schema, determinism, command line."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from audit_lib.cli import main
from audit_lib.demo.generate import DemoConfig, generate_bureau, generate_demo
from audit_lib.demo.generate.config import bureau_sizes
from audit_lib.data.schema import TABLES, TRUTH, TRUTH_KINDS
from audit_lib.errors import ConfigError

TINY = DemoConfig(bureaus=2, customers=600, days=70, start=dt.date(2024, 1, 20), seed=5)


def _digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every data file under ``folder`` (relative path → hash)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.parquet"))
    }


def _read(mart: Path, name: str) -> pa.Table:
    spec = TABLES[name]
    folder = mart / name
    if spec.partitioning == "city":
        return pq.read_table(folder)
    part = ds.partitioning(
        pa.schema([(k, pa.string()) for k in spec.partition_columns]), flavor="hive"
    )
    return ds.dataset(folder, format="parquet", partitioning=part).to_table()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate_demo(out, TINY)
    return out


def test_generate_demo_same_seed_gives_identical_files(demo: Path, tmp_path: Path) -> None:
    generate_demo(tmp_path, TINY, jobs=2)
    first, second = _digest(demo), _digest(tmp_path)
    assert first and first == second
    m1 = json.loads((demo / "manifest.json").read_text())
    m2 = json.loads((tmp_path / "manifest.json").read_text())
    m1.pop("timings_s")
    m2.pop("timings_s")
    assert m1 == m2


def test_generate_demo_other_seed_gives_other_data(demo: Path, tmp_path: Path) -> None:
    other = DemoConfig(bureaus=2, customers=600, days=70, start=dt.date(2024, 1, 20), seed=6)
    generate_demo(tmp_path, other)
    a = _digest(demo)
    b = _digest(tmp_path)
    assert (
        a["mart/readings/bureau=YZ/month=2024-02/part-0.parquet"]
        != (b["mart/readings/bureau=YZ/month=2024-02/part-0.parquet"])
    )


def test_generate_demo_writes_every_table_with_its_schema(demo: Path) -> None:
    mart = demo / "mart"
    for name, spec in TABLES.items():
        if name == "findings":
            continue  # written by detection, not by the generator
        table = _read(mart, name)
        assert table.num_rows > 0, name
        for col in spec.columns:
            assert col.name in table.column_names, (name, col.name)
            got = table.schema.field(col.name).type
            if pa.types.is_timestamp(col.type):  # Parquet has no second unit: read back as ms
                assert pa.types.is_timestamp(got), (name, col.name)
            elif col.name not in spec.partition_columns:
                assert got == col.type, (name, col.name)
    bureaus = _read(mart, "bureaus")["bureau"].to_pylist()
    assert bureaus == ["YZ", "JB"]  # the first two of parameters/bureaus/ by seq
    truth = pq.read_table(demo / "truth.parquet")
    assert truth.schema.equals(TRUTH.arrow_schema())
    assert set(truth["kind"].to_pylist()) <= set(TRUTH_KINDS)


def test_generate_demo_manifest_counts_match_files(demo: Path) -> None:
    manifest = json.loads((demo / "manifest.json").read_text())
    assert manifest["seed"] == TINY.seed
    assert manifest["parameters"]["customers"] == TINY.customers
    for name in ("customers", "readings", "bills", "meter_events"):
        assert manifest["rows"][name] == _read(demo / "mart", name).num_rows, name
    assert manifest["truth_rows"] == pq.read_table(demo / "truth.parquet").num_rows


def test_customer_numbers_are_unique_digit_strings_city_wide(demo: Path) -> None:
    customers = _read(demo / "mart", "customers").to_pandas()
    assert customers["cons_no"].is_unique
    assert customers["cons_no"].str.fullmatch(r"\d{10}").all()
    assert len(customers) == TINY.customers
    areas = _read(demo / "mart", "areas").to_pandas()
    assert areas["area_id"].is_unique
    meters = _read(demo / "mart", "meters").to_pandas()
    assert meters["meter_id"].is_unique


def test_bureau_sizes_are_uneven_and_sum_to_total() -> None:
    config = DemoConfig(bureaus=6, customers=100_000, days=60, seed=1)
    sizes = bureau_sizes(config)
    assert sizes.sum() == 100_000
    assert sizes.min() >= 1
    assert sizes.max() > 1.3 * sizes.min()


def test_generate_bureau_returns_every_table_and_truth() -> None:
    tables = generate_bureau(TINY, 1)
    assert set(tables) == {*TABLES, "truth"} - {"bureaus", "tariffs", "findings"}
    assert set(tables["customers"]["bureau"].to_pylist()) == {"JB"}
    with pytest.raises(IndexError):
        generate_bureau(TINY, 2)


def test_generate_demo_refuses_a_foreign_mart_folder(tmp_path: Path) -> None:
    (tmp_path / "mart").mkdir()
    with pytest.raises(ConfigError, match="not demo data"):
        generate_demo(tmp_path, TINY)


def test_cli_demo_data_writes_a_data_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["demo-data", "--out", str(tmp_path), "--bureaus", "1", "--customers", "200",
          "--days", "40", "--start", "2025-03-01", "--seed", "3"])  # fmt: skip
    assert "demo data written" in capsys.readouterr().out
    assert (tmp_path / "truth.parquet").exists()
    assert json.loads((tmp_path / "manifest.json").read_text())["rows"]["customers"] == 200


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--start", "2024-13-01"], "--start"),
        (["--start", "yesterday"], "--start"),
        (["--customers", "0"], "--customers"),
        (["--bureaus", "0"], "--bureaus"),
        (["--bureaus", "99"], "--bureaus"),
        (["--days", "3"], "--days"),
        (["--anomaly-scale", "-1"], "--anomaly-scale"),
        (["--jobs", "-1"], "--jobs"),
    ],
)
def test_cli_demo_data_bad_option_gives_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo-data", "--out", str(tmp_path / "x"), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("error:") and needle in err
    assert not (tmp_path / "x" / "mart").exists()


def test_mart_readings_equal_the_in_memory_bureau(demo: Path) -> None:
    readings = _read(demo / "mart", "readings")
    yz = readings.filter(pc.equal(readings["bureau"], "YZ"))
    memory = generate_bureau(TINY, 0)["readings"]
    keys = [("cons_no", "ascending"), ("date", "ascending")]
    a, b = yz.sort_by(keys), memory.sort_by(keys)
    assert a.num_rows == b.num_rows
    for col in ("cons_no", "date", "kwh", "month"):
        assert a[col].combine_chunks().equals(b[col].combine_chunks()), col


def test_demo_data_source_db_holds_the_same_rows(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from audit_lib.data.source import source_table

    db = tmp_path / "sg186.db"
    config = DemoConfig(bureaus=2, customers=300, days=40, start=dt.date(2024, 5, 1), seed=9)
    summary = generate_demo(tmp_path / "out", config, source_db=db)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        for name in ("bureaus", "customers", "readings", "bills", "meter_events"):
            count = conn.execute(sa.select(sa.func.count()).select_from(source_table(name)))
            assert count.scalar_one() == summary.rows[name], name
    engine.dispose()
    generate_demo(tmp_path / "out", config, source_db=db)  # a re-run replaces its own copy
    other = tmp_path / "foreign.db"
    other.write_text("not ours")
    with pytest.raises(ConfigError, match="source-db"):
        generate_demo(tmp_path / "out", config, source_db=other)
