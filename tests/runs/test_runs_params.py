"""Parameter files: bureau YAML, schedule YAML, and their check against the notebooks."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from audit_lib.errors import ConfigError
from audit_lib.runs.params import (
    check_parameters,
    city_bureaus,
    list_bureaus,
    load_bureau,
    matches_type,
    notebook_parameters,
    resolve_bureaus,
)
from audit_lib.runs.runner import REQUIRED_PARAMETERS
from audit_lib.runs.schedule import load_schedule, resolve_period

REPO = Path(__file__).resolve().parents[2]
PARAMETERS = REPO / "parameters"
OK_NB = Path(__file__).parent / "notebooks" / "ok.ipynb"


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        (1, "float", True),
        (1.5, "float", True),
        (True, "float", False),
        ("1.5", "float", False),
        (3, "int", True),
        (3.0, "int", False),
        (True, "bool", True),
        ("YZ", "str", True),
        (None, "str", False),
        (None, "str | None", True),
        (None, "Optional[int]", True),
        (["a", "b"], "list[str]", True),
        (["a", 1], "list[str]", False),
        ("a", "list[str]", False),
        ({"a": 1.0}, "dict[str, float]", True),
        ({"a": "x"}, "dict[str, float]", False),
        ("anything", "None", True),  # unannotated: papermill reports "None"
        ("anything", "Path", True),  # an annotation we do not check
    ],
)
def test_matches_type_accepts_and_rejects(value: object, annotation: str, expected: bool) -> None:
    assert matches_type(value, annotation) is expected


def test_notebook_parameters_include_annotations_papermill_misses() -> None:
    declared = notebook_parameters(OK_NB)
    assert declared["threshold"]["inferred_type_name"] == "float"
    assert declared["note"]["inferred_type_name"] == "str | None"


def test_check_parameters_rejects_unknown_key_naming_file_and_key() -> None:
    with pytest.raises(ConfigError, match=r"YZ\.yml: unknown parameter 'thresh' for notebook ok"):
        check_parameters(OK_NB, {"thresh": 1.0}, source="parameters/bureaus/YZ.yml")


def test_check_parameters_rejects_wrong_type_naming_file_and_key() -> None:
    with pytest.raises(ConfigError, match=r"YZ\.yml: parameter 'labels' .* list\[str\]"):
        check_parameters(OK_NB, {"labels": "a,b"}, source="parameters/bureaus/YZ.yml")
    check_parameters(OK_NB, {"labels": ["a"], "threshold": 7, "note": None})


def _bureau(tmp_path: Path, code: str, text: str) -> Path:
    folder = tmp_path / "bureaus"
    folder.mkdir(exist_ok=True)
    (folder / f"{code}.yml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("code: XX\nname_zh: 甲\nname_en: A\n", "key 'code' is 'XX', expected 'B1'"),
        ("code: B1\nname_zh: 甲\nname_en: A\ncolour: red\n", "unknown key 'colour'"),
        ("code: B1\nname_en: A\n", "key 'name_zh' must be a non-empty string"),
        ("code: B1\nname_zh: 甲\nname_en: A\nnotebooks: [a]\n", "key 'notebooks'"),
        ("code: [B1\n", "not valid YAML"),
    ],
)
def test_load_bureau_rejects_bad_files(tmp_path: Path, text: str, message: str) -> None:
    root = _bureau(tmp_path, "B1", text)
    with pytest.raises(ConfigError, match=r"B1\.yml") as info:
        load_bureau("B1", root)
    assert message in str(info.value)


def test_resolve_bureaus_all_list_and_unknown(tmp_path: Path) -> None:
    for code in ("B2", "B1"):
        _bureau(tmp_path, code, f"code: {code}\nname_zh: 甲\nname_en: A\n")
    assert resolve_bureaus("all", tmp_path) == ["B1", "B2"]
    assert resolve_bureaus("B2, B1,B2", tmp_path) == ["B2", "B1"]
    with pytest.raises(ConfigError, match=r"unknown bureau 'B9'.*B9\.yml"):
        resolve_bureaus("B1,B9", tmp_path)


def test_resolve_all_with_a_mart_keeps_bureaus_that_have_customers(tmp_path: Path) -> None:
    for code in ("B1", "B2", "B3"):
        _bureau(tmp_path, code, f"code: {code}\nname_zh: 甲\nname_en: A\n")
    mart = tmp_path / "mart"
    for code in ("B3", "B1", "ZZ"):  # ZZ has data but no parameter file
        (mart / "customers" / f"bureau={code}").mkdir(parents=True)
    assert resolve_bureaus("all", tmp_path, mart=mart) == ["B1", "B3"]
    assert resolve_bureaus("B2", tmp_path, mart=mart) == ["B2"]  # explicit codes are kept
    with pytest.raises(ConfigError, match="mart has no customers table"):
        resolve_bureaus("all", tmp_path, mart=tmp_path / "empty")


def test_repo_bureau_files_are_the_city_in_its_order() -> None:
    city = city_bureaus(PARAMETERS)
    assert len(city) == 26
    assert [b.seq for b in city] == list(range(1, 27))
    assert [b.code for b in city[:5]] == ["YZ", "JB", "NA", "SPB", "JLP"]
    assert [b.zone for b in city[:9]] == ["urban_core"] * 9
    assert {b.zone for b in city[9:]} == {"suburban", "outlying"}
    assert city[0].themes == {"area_line_loss": {"high_loss": 0.06}}
    assert next(b for b in city if b.code == "BS").themes == {}  # the catalogue's 8 %


def test_bureau_order_zone_and_theme_params_are_checked(tmp_path: Path) -> None:
    head = "code: B1\nname_zh: 甲\nname_en: A\n"
    _bureau(tmp_path, "B1", head + "seq: 0\n")
    with pytest.raises(ConfigError, match=r"B1\.yml: key 'seq' must be a positive whole number"):
        load_bureau("B1", tmp_path)
    _bureau(tmp_path, "B1", head + "zone: downtown\n")
    with pytest.raises(ConfigError, match="key 'zone' must be one of urban_core"):
        load_bureau("B1", tmp_path)
    _bureau(tmp_path, "B1", head + "themes:\n  no_such_theme: {x: 1}\n")
    with pytest.raises(ConfigError, match=r"B1\.yml: themes: unknown theme 'no_such_theme'"):
        load_bureau("B1", tmp_path)
    _bureau(tmp_path, "B1", head + "themes:\n  area_line_loss: {high_los: 0.06}\n")
    with pytest.raises(ConfigError, match="area_line_loss: unknown parameter 'high_los'"):
        load_bureau("B1", tmp_path)
    _bureau(tmp_path, "B1", head + "themes:\n  area_line_loss: {high_loss: '6%'}\n")
    with pytest.raises(ConfigError, match=r"area_line_loss.high_loss: must be float"):
        load_bureau("B1", tmp_path)
    _bureau(tmp_path, "B1", head + "seq: 2\n")
    _bureau(tmp_path, "B2", "code: B2\nname_zh: 乙\nname_en: B\nseq: 2\n")
    with pytest.raises(ConfigError, match="seq 2 is also"):
        city_bureaus(tmp_path)
    _bureau(tmp_path, "B2", "code: B2\nname_zh: 乙\nname_en: B\nseq: 1\n")
    _bureau(tmp_path, "B3", "code: B3\nname_zh: 丙\nname_en: C\n")
    assert [b.code for b in city_bureaus(tmp_path)] == ["B2", "B1", "B3"]


def _referenced_notebooks() -> list[str]:
    stems = {s for c in list_bureaus(PARAMETERS) for s in load_bureau(c, PARAMETERS).notebooks}
    stems |= {Path(e.notebook).stem for e in load_schedule(PARAMETERS / "schedule.yml").entries}
    return sorted(stems)


@pytest.mark.parametrize("stem", _referenced_notebooks())
def test_repo_parameter_files_match_their_notebook(stem: str) -> None:
    notebook = REPO / "notebooks" / f"{stem}.ipynb"
    if not notebook.is_file():
        pytest.skip(f"notebooks/{stem}.ipynb does not exist yet: its parameter files wait for it")
    declared = notebook_parameters(notebook)
    for name in REQUIRED_PARAMETERS:
        assert name in declared, f"notebooks/{stem}.ipynb must declare {name!r}"
    for code in list_bureaus(PARAMETERS):
        spec = load_bureau(code, PARAMETERS)
        check_parameters(notebook, spec.for_notebook(notebook), source=spec.source)
    for entry in load_schedule(PARAMETERS / "schedule.yml").entries:
        if Path(entry.notebook).stem == stem:
            check_parameters(notebook, entry.parameters, source=f"schedule.yml ({entry.name})")


def test_repo_schedule_is_valid() -> None:
    schedule = load_schedule(PARAMETERS / "schedule.yml")
    assert {e.name for e in schedule.entries} >= {"monitoring-daily", "operations-monthly"}
    for entry in schedule.entries:
        assert (REPO / entry.notebook).parent == REPO / "notebooks"


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("previous_day", "2025-01-31"),
        ("previous_week", "2025-01-20..2025-01-26"),
        ("previous_month", "2025-01"),
        ("current_month", "2025-02"),
        ("trailing_12_months", "2024-02..2025-01"),
        ("trailing_30_days", "2025-01-02..2025-01-31"),
        ("trailing_1_days", "2025-01-31..2025-01-31"),
        ("2024-06", "2024-06"),
    ],
)
def test_resolve_period_rules(rule: str, expected: str) -> None:
    slot = datetime(2025, 2, 1, 6, 30, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Saturday
    assert resolve_period(rule, slot) == expected


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: a, notebook: n.ipynb, cron: 'not cron', period: previous_day}", "'cron'"),
        (
            "{name: a, notebook: n.ipynb, cron: '* * * * *', period: previous_day, colour: 1}",
            "'colour'",
        ),
        (
            "{name: a, notebook: n.ipynb, cron: '* * * * *', period: 2025-01, workers: 0}",
            "'workers'",
        ),
        ("{name: a, cron: '* * * * *', period: x}", "'notebook'"),
        ("{name: a, notebook: n.ipynb, cron: '* * * * *', period: previous_dya}", "'period'"),
    ],
)
def test_load_schedule_rejects_bad_entries(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "schedule.yml"
    path.write_text(f"entries:\n  - {entry}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"schedule\.yml: entries\[0\]") as info:
        load_schedule(path)
    assert message in str(info.value)


def test_schedule_timeout_defaults_to_an_hour_and_zero_lifts_it(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yml"
    path.write_text(
        "entries:\n"
        "  - {name: a, notebook: n.ipynb, cron: '0 6 * * *', period: previous_day}\n"
        "  - {name: b, notebook: n.ipynb, cron: '0 6 * * *', period: previous_day, timeout: 0}\n",
        encoding="utf-8",
    )
    assert [e.timeout for e in load_schedule(path).entries] == [3600.0, None]


def test_a_bureau_theme_params_reach_a_notebook_that_declares_them(tmp_path: Path) -> None:
    from audit_lib.runs.runner import make_job

    _bureau(tmp_path, "B1", "code: B1\nname_zh: 甲\nname_en: A\n"
            "themes:\n  area_line_loss: {high_loss: 0.06}\n")  # fmt: skip
    _bureau(tmp_path, "B2", "code: B2\nname_zh: 乙\nname_en: B\n")
    plan = {"notebook_path": str(REPO / "notebooks" / "monitoring.ipynb"),
            "notebook": "notebooks/monitoring.ipynb", "run_dir": str(tmp_path / "run"),
            "parameters_dir": str(tmp_path), "run_id": "r1", "period": "2025-01",
            "outputs": str(tmp_path / "out"), "cwd": str(tmp_path)}  # fmt: skip
    assert make_job(plan, "B1").parameters["theme_params"] == {
        "area_line_loss": {"high_loss": 0.06}
    }
    assert make_job(plan, "B2").parameters["theme_params"] == {}
    plan["notebook_path"] = str(OK_NB)  # declares no theme_params: none is passed
    assert "theme_params" not in make_job(plan, "B1").parameters
