"""Synthetic personal data: names, phone numbers, ID / licence numbers (all fake).

They exist so that masking can be tested; none belongs to a real person or company.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit_lib.demo.generate.org import digits
from audit_lib.demo.generate.population import RES

SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高谭冉向秦")
GIVEN = tuple("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国红梅兰川渝")
TRADE = ("商贸", "餐饮", "科技", "建材", "机械", "化工", "电子", "物流", "农业", "食品")
PLACES = ("渝州", "巴渝", "山城", "两江", "嘉陵", "长江", "朝天", "歌乐", "缙云", "南山")


def _pick(rng: np.random.Generator, options: tuple[str, ...], n: int) -> pa.Array:
    return pa.array(np.array(options, dtype=object)[rng.integers(0, len(options), n)], pa.string())


def draw_identity(rng: np.random.Generator, cls: np.ndarray) -> dict[str, pa.Array]:
    """Name, phone and ID number per customer (companies get a name and a licence number)."""
    n = len(cls)
    person = pc.binary_join_element_wise(
        _pick(rng, SURNAMES, n), _pick(rng, GIVEN, n), _pick(rng, GIVEN + ("",) * 10, n), ""
    )
    company = pc.binary_join_element_wise(
        "重庆", _pick(rng, PLACES, n), _pick(rng, TRADE, n), "有限公司", ""
    )
    is_person = pa.array(cls == RES)
    name = pc.if_else(is_person, person, company)
    prefix = _pick(rng, ("138", "139", "158", "186", "187", "189", "177", "135"), n)
    phone = pc.binary_join_element_wise(prefix, digits("", rng.integers(0, 10**8, n), 8), "")
    phone = pc.if_else(pa.array(rng.random(n) < 0.05), pa.nulls(n, pa.string()), phone)
    birth = np.datetime64("1950-01-01") + rng.integers(0, 365 * 52, n)
    ymd = pc.strftime(pa.array(birth.astype("datetime64[s]")), format="%Y%m%d")
    id_person = pc.binary_join_element_wise(
        digits("500", rng.integers(100, 300, n), 3),
        ymd,
        digits("", rng.integers(0, 10**4, n), 4),
        "",
    )
    id_company = digits("91500", rng.integers(0, 10**13, n), 13)
    return {"name": name, "phone": phone, "id_no": pc.if_else(is_person, id_person, id_company)}
