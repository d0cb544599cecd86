"""Running components in one process until SIGTERM or SIGINT, then draining.

A component has `name`, `start()` and `stop()`; `stop()` finishes the work in
hand. Components stop in the reverse order of their start, so the ingress
stops taking requests before the router stops storing. A start that fails
stops what had started and re-raises.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def serve(components: Sequence[Component], stopping: asyncio.Event | None = None) -> None:
    """Start every component, wait for a stop signal, stop them all."""
    stopping = stopping or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    started: list[Component] = []
    try:
        for component in components:
            await component.start()
            started.append(component)
            log.info("started", component=component.name)
        await stopping.wait()
        log.info("stopping", components=[c.name for c in started])
    finally:
        for component in reversed(started):
            await component.stop()
            log.info("stopped", component=component.name)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
