"""The audit loop's own numbers per bureau or station (稽查闭环指标), in one SQL query each.

Counted over the tasks whose audited period starts in ``start``..``end`` (the month the
dashboard shows), inside the reader's scope (:func:`policy.scope_filter`):

- raised (生成任务): those tasks;
- closed on time (按期办结): archived without any overdue stay;
- overdue now (当前超期): still open and past their deadline at ``now``;
- hit rate (查实率): confirmed ÷ reviewed, in percent (outcome other than "no problem" among
  the tasks with an outcome and a reviewer);
- money recovered (追回金额): back-billed charges + penalties, 元.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session

from audit_lib.tasks.machine import OPEN_STATES
from audit_lib.tasks.models import Outcome, Task, TaskDeadline, User, utcnow
from audit_lib.tasks.policy import scope_filter
from audit_lib.tasks.service import get_user

LOOP_COLUMNS = ("raised", "closed_on_time", "overdue_now", "hit_rate", "recovered")


def loop_numbers(
    session: Session,
    actor: User | str,
    start: dt.date,
    end: dt.date,
    *,
    bureau: str | None = None,
    now: dt.datetime | None = None,
) -> pd.DataFrame:
    """Loop numbers per bureau, or per station of ``bureau`` (drill-down).

    Returns
    -------
    pandas.DataFrame
        One row per unit (column ``unit``) with the columns of :data:`LOOP_COLUMNS`.
    """
    user = get_user(session, actor)
    now = now or utcnow()
    unit = Task.bureau if bureau is None else func.coalesce(Task.station_id, "-")
    late = exists().where(and_(TaskDeadline.task_id == Task.id, TaskDeadline.overdue))
    reviewed = and_(Outcome.kind.is_not(None), Task.reviewed_by.is_not(None))
    one = 1
    stmt = (
        select(
            unit.label("unit"),
            func.count().label("raised"),
            func.sum(case((and_(Task.state == "archived", ~late), one), else_=0)).label(
                "closed_on_time"
            ),
            func.sum(
                case((and_(Task.state.in_(OPEN_STATES), Task.due_at < now), one), else_=0)
            ).label("overdue_now"),
            func.sum(case((reviewed, one), else_=0)).label("reviewed"),
            func.sum(case((and_(reviewed, Outcome.kind != "no_problem"), one), else_=0)).label(
                "confirmed"
            ),
            func.sum(
                func.coalesce(Outcome.backbilled_money, 0) + func.coalesce(Outcome.penalty, 0)
            ).label("recovered"),
        )
        .select_from(Task)
        .outerjoin(Outcome, Outcome.task_id == Task.id)
        .where(scope_filter(user), Task.period_start >= start, Task.period_start <= end)
        .group_by(unit)
        .order_by(unit)
    )
    if bureau is not None:
        stmt = stmt.where(Task.bureau == bureau)
    frame = pd.DataFrame(session.execute(stmt).all())
    if frame.empty:
        return pd.DataFrame(columns=["unit", *LOOP_COLUMNS])
    reviewed_n = frame["reviewed"].astype(float)
    frame["hit_rate"] = (100 * frame["confirmed"] / reviewed_n.where(reviewed_n > 0)).round(1)
    frame["recovered"] = frame["recovered"].astype(float).round(2)
    return frame[["unit", *LOOP_COLUMNS]]
