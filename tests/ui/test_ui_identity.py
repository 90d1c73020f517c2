"""Identity (server user, token map), masking of personal data, labels, error pages."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from audit_lib.errors import ConfigError, PermissionDenied
from audit_lib.ui import registry, user
from audit_lib.ui.apps.base import ErrorApp
from audit_lib.ui.apps.masking import mask_frame, mask_id, mask_name, mask_phone
from audit_lib.ui.apps.review import ReviewApp
from audit_lib.ui.i18n import label, state_label, ui_lang
from audit_lib.ui.server import identity


@pytest.fixture(autouse=True)
def no_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(user, "_server_user", None)
    monkeypatch.delenv(user.HUB_USER_ENV, raising=False)


def test_identity_needs_a_server_user(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PermissionDenied, match="audit serve"):
        user.current_user()
    monkeypatch.setenv(user.HUB_USER_ENV, "rev_yz")
    assert user.current_user() == "rev_yz"
    user.set_server_user("han_s1")
    assert user.current_user() == "han_s1"
    with pytest.raises(PermissionDenied):
        user.set_server_user("x'); import os; ('")


def test_identity_token_map_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "tokens.json"
    good.write_text(json.dumps({"a" * 24: "rev_yz", "b" * 16: "han_s1"}))
    assert identity.load_token_map(good) == {"a" * 24: "rev_yz", "b" * 16: "han_s1"}
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"abc": "rev_yz"}))
    with pytest.raises(ConfigError, match=r"short.json, entry 0 \(rev_yz\): token shorter"):
        identity.load_token_map(short)
    bad_name = tmp_path / "bad.json"
    bad_name.write_text(json.dumps({"c" * 20: "bad name!"}))
    with pytest.raises(ConfigError, match="invalid user name"):
        identity.load_token_map(bad_name)
    with pytest.raises(ConfigError, match="not found"):
        identity.load_token_map(tmp_path / "missing.json")


def test_identity_apps_per_role() -> None:
    assert [a.name for a in registry.apps_for("reviewer")] == ["task_review", "dashboard"]
    assert [a.name for a in registry.apps_for("station_handler")] == ["task_handling", "dashboard"]
    assert registry.may_open("reviewer", "task_review")
    assert not registry.may_open("station_handler", "task_review")
    assert not registry.may_open("admin", "no_such_app")


def test_app_without_identity_is_an_error_page(monkeypatch: pytest.MonkeyPatch) -> None:
    app = ReviewApp.for_current_user(db_url="sqlite:///:memory:")
    assert isinstance(app, ErrorApp)
    assert "audit serve" in app.view.value and "Traceback" not in app.view.value


def test_masking_by_role() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id("500101199001011234") == "5001**********1234"
    person = pd.DataFrame({"phone": ["13812345678"], "id_no": ["500101199001011234"]})
    seen = mask_frame(person, "station_handler").iloc[0]
    assert seen["phone"] == "13812345678"  # a handler calls the customer
    assert seen["id_no"].count("*") == 10
    frame = pd.DataFrame(
        {"name": ["张三丰", "李", None], "phone": ["13812345678", "123", None], "x": [1, 2, 3]}
    )
    shown = mask_frame(frame, "reviewer")
    assert shown["name"].tolist() == ["张**", "李*", ""]
    assert shown["phone"].tolist() == ["138****5678", "***", ""]
    assert shown["x"].tolist() == [1, 2, 3] and frame["name"].iat[0] == "张三丰"
    assert mask_frame(frame, "admin")["name"].iat[0] == "张三丰"


def test_labels_in_both_languages(monkeypatch: pytest.MonkeyPatch) -> None:
    assert label("page", "zh", page=1, pages=3, total=70) == "第 1/3 页，共 70 条"
    assert label("page", "en", page=1, pages=3, total=70) == "Page 1/3, 70 tasks"
    assert state_label("under_review", "en") == "under review"
    monkeypatch.setenv("AUDIT_UI_LANG", "en")
    assert ui_lang() == "en"
    with pytest.raises(ConfigError, match="fr"):
        ui_lang("fr")
