"""`carecontracts serve` started for real on a free loopback port, for the tests that need a server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx


@contextmanager
def serving(workspace: Path) -> Iterator[str]:
    """The service's base URL once `/api/health` answers; the server is stopped afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).parent / "carecontracts"), "serve", "-w", str(workspace), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/api/health", timeout=2)
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    raise AssertionError(f"the service stopped: {server.stderr.read() if server.stderr else ''}") from None
                assert time.monotonic() < deadline, "the service did not answer within 60 s"
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)
