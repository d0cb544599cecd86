"""Running a benchmark's coroutine on uvloop when it is installed.

The hub serves on uvloop, so its baselines and load generators must too, or
the ratios would compare event loops rather than code paths. This module
never changes the global event loop policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a new event loop (uvloop if available)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def name() -> str:
    """The event loop that `run` uses, for the report."""
    try:
        import uvloop  # noqa: F401 (only whether it imports matters)
    except ImportError:
        return "asyncio"
    return "uvloop"
