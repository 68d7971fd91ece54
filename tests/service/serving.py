"""For the service's tests: the command line run in-process, and `carecontracts serve` started
for real on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
from typer.testing import CliRunner

from carecontracts.cli import app

runner = CliRunner()


def cli(*args: object, input: str | None = None) -> str:
    """Run a command; its output, once it has succeeded."""
    result = runner.invoke(app, [str(a) for a in args], input=input)
    assert result.exit_code == 0, result.output
    return result.output


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
