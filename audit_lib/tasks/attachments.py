"""Evidence files of tasks (附件), kept by the workbench itself, outside every served folder.

A file is *copied into* the store, never referred to by a path a user gave: the store is
``AUDIT_ATTACHMENTS`` (default ``var/attachments`` under the directory the command starts in;
``audit serve`` hands its absolute path to the apps' kernels), and a file lies there as
``<task id>/<sha256><suffix>``. Only the types of :data:`TYPES` are taken, at most
:data:`MAX_BYTES`, and a raster image must be what its name says. Evidence is added by the
handlers and auditors of the task's scope while the task is open (never to an archived or
cancelled one); reading one goes through the same scope check as the task itself
(:func:`open_attachment`), and the server sends it with its type from :data:`TYPES` only.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_lib.errors import DataError, NotFound, PermissionDenied
from audit_lib.tasks.auditlog import EventIn, append_events
from audit_lib.tasks.machine import FINAL_STATES, STATE_LABELS
from audit_lib.tasks.models import Attachment, User
from audit_lib.tasks.service import get_task, get_user

STORE_ENV = "AUDIT_ATTACHMENTS"
DEFAULT_STORE = Path("var") / "attachments"
MAX_BYTES = 20 * 1024 * 1024
ADD_ROLES = frozenset({"station_handler", "bureau_auditor", "city_auditor"})
"""Who may add evidence (the reviewer judges it, the admin administers)."""


@dataclass(frozen=True)
class FileType:
    """A type of evidence file: its MIME type, and whether it is a raster image (shown in the
    page after the server has re-encoded it; every other type is only downloaded)."""

    mime: str
    image: bool = False
    magic: tuple[bytes, ...] = ()


TYPES: dict[str, FileType] = {
    ".jpg": FileType("image/jpeg", True, (b"\xff\xd8\xff",)),
    ".jpeg": FileType("image/jpeg", True, (b"\xff\xd8\xff",)),
    ".png": FileType("image/png", True, (b"\x89PNG\r\n\x1a\n",)),
    ".pdf": FileType("application/pdf", magic=(b"%PDF-",)),
    ".txt": FileType("text/plain"),
    ".csv": FileType("text/csv"),
    ".xlsx": FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ".docx": FileType("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
}
"""Evidence types taken, by the file name's suffix (an SVG or HTML file is never taken)."""

SAFE_NAME = re.compile(r"[^\w.\-]+")


def store_dir() -> Path:
    """The attachment store (``AUDIT_ATTACHMENTS``, else ``var/attachments``), absolute."""
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE).resolve()


def file_type(name: str, content: bytes) -> tuple[str, FileType]:
    """The suffix and :class:`FileType` of a file ``name`` with ``content``.

    Raises
    ------
    DataError
        If the suffix is not in :data:`TYPES`, or the content does not start as that type's
        files do (a script renamed ``.png``), naming the file.
    """
    suffix = Path(name).suffix.lower()
    kind = TYPES.get(suffix)
    if kind is None:
        raise DataError(f"附件类型不允许 file type {suffix or '(none)'} not taken; "
                        f"allowed: {', '.join(TYPES)}", file=name)  # fmt: skip
    if kind.magic and not content.startswith(kind.magic):
        raise DataError(f"文件内容与类型不符 the content is not a {suffix} file", file=name)
    return suffix, kind


def add_attachment(
    session: Session, task_id: int, name: str, content: bytes, actor: User | str
) -> Attachment:
    """Copy ``content`` (a file called ``name``) into the store as evidence of a task.

    Raises
    ------
    PermissionDenied
        If the actor may not add evidence (role, scope) or the task is archived or cancelled.
    DataError
        If the file is empty, too large, or of a type not taken.
    """
    user = get_user(session, actor)
    task = get_task(session, task_id, user)  # the scope check
    if user.role not in ADD_ROLES:
        raise PermissionDenied(f"角色 {user.role} 不能添加附件 (role {user.role} may not add "
                               "evidence)")  # fmt: skip
    if task.state in FINAL_STATES:
        state = STATE_LABELS[task.state]
        raise PermissionDenied(f"任务 {task.id} {state[0]}，不能添加附件 "
                               f"(task {task.id} is {state[1]}: no more evidence)")  # fmt: skip
    if not content:
        raise DataError("附件为空 the file is empty", file=name)
    if len(content) > MAX_BYTES:
        raise DataError(f"附件过大 the file is larger than {MAX_BYTES} bytes", file=name)
    suffix, _ = file_type(name, content)
    digest = hashlib.sha256(content).hexdigest()
    relative = f"{task.id}/{digest}{suffix}"
    target = store_dir() / relative
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_suffix(target.suffix + ".part")
        part.write_bytes(content)
        part.replace(target)  # whole or absent
    row = Attachment(task_id=task.id, path=relative, sha256=digest, size=len(content),
                     added_by=user.name)  # fmt: skip
    session.add(row)
    session.flush()
    original = SAFE_NAME.sub("_", Path(name).name)[-120:]
    append_events(session, [EventIn(user.name, "attach", task.id, task.state, task.state,
                                    {"name": original, "sha256": digest, "size": len(content)})])  # fmt: skip
    return row


def open_attachment(
    session: Session, task_id: int, sha256: str, actor: User | str
) -> tuple[Path, FileType]:
    """The stored file of a task's attachment and its type, for a reader who may see the task.

    Raises
    ------
    NotFound
        If the task has no such attachment or its file is gone from the store.
    PermissionDenied
        If the reader may not see the task.
    """
    task = get_task(session, task_id, get_user(session, actor))
    row = session.execute(
        select(Attachment).where(Attachment.task_id == task.id, Attachment.sha256 == sha256)
    ).scalar()
    if row is None:
        raise NotFound(f"任务 {task.id} 无此附件 (task {task.id} has no attachment {sha256[:12]})")
    kind = TYPES.get(Path(row.path).suffix.lower())
    path = store_dir() / row.path
    if kind is None or not path.is_file() or store_dir() not in path.resolve().parents:
        raise NotFound(
            f"附件文件不在存储中 (the file of attachment {sha256[:12]} is not in the store)"
        )
    return path, kind
