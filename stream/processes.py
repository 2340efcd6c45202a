"""Child processes of ours (broker, ClickHouse, workers): free loopback ports and stopping by pid."""
from __future__ import annotations

import os
import signal
import socket
import subprocess


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen | None, grace: float = 10.0, *, group: bool = False) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; ``group`` kills the child's whole process group
    (a child started with start_new_session=True, with children of its own)."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait()
