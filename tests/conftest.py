"""Shared fixtures: a seeded generator, and the root logger put back after every test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator, so every test is repeatable."""
    return np.random.default_rng(20241127)


@pytest.fixture(autouse=True)
def _root_logging_put_back() -> Iterator[None]:
    """Undo a command's ``logging.basicConfig`` when its test ends.

    A command run in a test (``audit run`` …) points the root logger at the test's captured
    stderr and sets it to INFO; a later test's server thread (the loopback SMTP server) then
    logs to that closed stream ("Logging error"). pytest's own capture handlers are
    subclasses and are left to pytest.
    """
    root = logging.getLogger()
    level, before = root.level, set(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in before]:
        if type(handler) in (logging.StreamHandler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
