"""The reviewer's app (稽查任务审核): inbox, task view, evidence chart, review actions.

Build it with ``ReviewApp.for_current_user()`` in a Voila notebook (the user comes from the
server, :mod:`audit_lib.ui.server.identity`) or with ``ReviewApp(factory, "rev_yz")`` in tests;
display ``.view``. Approve, send back and require rectification each take a comment (the task
service requires one for the last two).
"""

from __future__ import annotations

from audit_lib.ui.apps.inboxapp import InboxApp

REVIEW_ACTIONS = ("start_review", "approve", "send_back", "require_rectification")


class ReviewApp(InboxApp):
    """Inbox + task view + review actions for one reviewer."""

    TITLE = "review_title"
    ACTIONS = REVIEW_ACTIONS
    CSS = "audit-review-app"
