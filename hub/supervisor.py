"""Several processes of one role on one machine: `hub ingress --processes N`.

The children are plain `hub ROLE` processes sharing the listening port
(SO_REUSEPORT: the kernel spreads connections over them). Each needs a
metrics port of its own (a scrape must reach the process it counts): with
HUB_METRICS_ADDR=HOST:P, child i (0-based) serves P + i (port 0: any free one). The supervisor
forwards SIGTERM and SIGINT to every child and waits for them to drain. If a
child dies on its own, the supervisor stops the others and exits non-zero,
so that the orchestrator (systemd, Kubernetes) restarts the whole group; it
never restarts children itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

import structlog

log = structlog.get_logger(__name__)


def supervise(role: str, processes: int) -> int:
    command = [sys.executable, "-m", "hub", role]
    children = [subprocess.Popen(command, env=_child_env(i)) for i in range(processes)]
    log.info("supervising", role=role, pids=[c.pid for c in children])
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    while not stopping and all(c.poll() is None for c in children):
        time.sleep(0.2)
    if not stopping:
        died = [c.pid for c in children if c.poll() is not None]
        log.error("a child died; stopping the others", role=role, pids=died)
        forward(signal.SIGTERM, None)
        stopping = False
    codes = [c.wait() for c in children]
    if not stopping:
        return 1
    return max(codes)


def _child_env(i: int) -> dict[str, str]:
    env = os.environ.copy()
    given = env.get("HUB_METRICS_ADDR")
    if given:
        host, _, port = given.rpartition(":")
        if port.isdigit() and int(port) != 0:
            env["HUB_METRICS_ADDR"] = f"{host}:{int(port) + i}"
    return env
