"""Fixtures and helpers of the task tests: fresh SQLite and PostgreSQL databases, users, findings.

PostgreSQL: the URL comes from ``AUDIT_TEST_PG_URL``; under ``CI=true`` it defaults to the local
server (and the tests fail if it is absent). Each test gets its own database with a random name,
dropped afterwards. Import the fixtures into a test module::

    from tasks_fixtures import db_url, pg_url, sqlite_url  # noqa: F401
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from audit_lib.db import create_engine, session_factory
from audit_lib.migrations import upgrade
from audit_lib.tasks.models import User
from audit_lib.tasks.service import add_user

CI_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_SKIP = (
    "PostgreSQL task tests are off: set AUDIT_TEST_PG_URL="
    "postgresql+psycopg://postgres@127.0.0.1:5432/test (CI=true turns them on by default)"
)

USERS: list[tuple[str, str, str | None, str | None]] = [
    ("city", "city_auditor", None, None),
    ("aud_yz", "bureau_auditor", "YZ", None),
    ("aud_jb", "bureau_auditor", "JB", None),
    ("han_s1", "station_handler", "YZ", "YZ-S1"),
    ("han_s1b", "station_handler", "YZ", "YZ-S1"),
    ("han_s2", "station_handler", "YZ", "YZ-S2"),
    ("han_jb", "station_handler", "JB", "JB-S1"),
    ("rev_yz", "reviewer", "YZ", None),
    ("rev_city", "reviewer", None, None),
    ("owner", "theme_owner", None, None),
    ("admin", "admin", None, None),
]


def pg_base_url() -> str | None:
    """The server URL for PostgreSQL tests, or None when they are off."""
    url = os.environ.get("AUDIT_TEST_PG_URL")
    if not url and os.environ.get("CI", "").lower() == "true":
        url = CI_PG_URL
    return url or None


def create_pg_database(template: str | None = None) -> tuple[str, str]:
    """Create a database with a random name; return ``(its URL, the server URL)``."""
    base = pg_base_url()
    if base is None:
        pytest.skip(PG_SKIP)
    name = f"audit_test_{uuid.uuid4().hex[:12]}"
    admin = sa_create_engine(
        make_url(base).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    clause = f' TEMPLATE "{template}"' if template else ""
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')
    finally:
        admin.dispose()
    url = make_url(base).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False), base


def drop_pg_database(url: str, base: str) -> None:
    """Drop the database at ``url`` (forcing out leftover connections)."""
    name = make_url(url).database
    admin = sa_create_engine(
        make_url(base).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    """A migrated SQLite database file in the test's temporary folder."""
    url = f"sqlite:///{tmp_path}/audit.db"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database (this run only) that test databases are copied from."""
    url, base = create_pg_database()
    try:
        upgrade(url)
        yield str(make_url(url).database)
    finally:
        drop_pg_database(url, base)


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database (a copy of the migrated template), dropped after the test."""
    url, base = create_pg_database(template=pg_template)
    try:
        yield url
    finally:
        drop_pg_database(url, base)


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test twice: on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def make_session(db_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on the test database, with the standard users added."""
    engine = create_engine(db_url)
    factory = session_factory(engine)
    with factory() as session:
        add_users(session)
        session.commit()
    yield factory
    engine.dispose()


def add_users(session: Session) -> dict[str, User]:
    """Add :data:`USERS` (one of every role, two bureaus, two stations)."""
    return {
        name: add_user(session, name, role, bureau, station, email=f"{name}@example.test")
        for name, role, bureau, station in USERS
    }


def make_findings(
    n_customers: int,
    rng: np.random.Generator,
    *,
    per_customer: int = 1,
    bureau: str = "YZ",
    stations: tuple[str, ...] = ("YZ-S1", "YZ-S2"),
    period: tuple[str, str] = ("2024-03-01", "2024-03-31"),
    prefix: str = "",
) -> pd.DataFrame:
    """A findings frame with the columns of ``FINDINGS``: ``per_customer`` themes each."""
    themes = np.array(["zero_consumption", "theft_suspicion", "abrupt_drop", "meter_events"])
    n = n_customers * per_customer
    cust = np.repeat(np.arange(n_customers), per_customer)
    theme = themes[np.tile(np.arange(per_customer), n_customers) % len(themes)]
    entity = prefix + pd.Series((5000000000 + cust).astype(str), dtype=object)
    fid = entity + ":" + pd.Series(theme) + ":" + period[0]
    score = rng.random(n)
    return pd.DataFrame(
        {
            "finding_id": fid,
            "theme_id": theme,
            "theme_version": np.int32(1),
            "entity": entity,
            "entity_kind": "customer",
            "station_id": np.asarray(stations, dtype=object)[cust % len(stations)],
            "area_id": "A" + pd.Series((cust % 50).astype(str), dtype=object),
            "period_start": pd.Timestamp(period[0]),
            "period_end": pd.Timestamp(period[1]),
            "score": score,
            "severity": np.where(score > 0.8, "high", np.where(score > 0.4, "medium", "low")),
            "kwh_at_risk": rng.random(n) * 500,
            "money_at_risk": rng.random(n) * 300,
            "reason_zh": "连续零电量",
            "reason_en": "zero consumption for 30 days",
            "evidence": '{"days": 30}',
            "run_id": "run-1",
            "notebook": "outputs/run-1/YZ/monitor.ipynb",
            "bureau": bureau,
        }
    )


LOOP_TO_ARCHIVE: list[tuple[str, str, dict[str, object]]] = [
    ("dispatch", "aud_yz", {}),
    ("accept", "han_s1", {}),
    (
        "submit_result",
        "han_s1",
        {"outcome": "confirmed_theft", "amounts": {"backbilled_kwh": 1200.0}},
    ),
    ("start_review", "rev_yz", {}),
    ("require_rectification", "rev_yz", {"comment": "更换表计 replace the meter"}),
    ("start_rectification", "han_s1", {}),
    ("submit_rectification", "han_s1", {"amounts": {"backbilled_money": 624.0, "penalty": 1872.0}}),
    ("start_review", "rev_yz", {}),
    ("approve", "rev_yz", {}),
    ("archive", "aud_yz", {}),
]


def drive(
    factory: sessionmaker[Session], task_id: int, steps: list[tuple[str, str, dict[str, object]]]
) -> None:
    """Perform ``steps`` (action, user, keyword arguments) on a task, one commit each."""
    from audit_lib.tasks.service import act, commit_or_conflict

    for action, user, kwargs in steps:
        with factory() as session:
            act(session, task_id, action, user, **kwargs)  # type: ignore[arg-type]
            commit_or_conflict(session)
