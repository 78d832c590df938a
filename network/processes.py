"""Processes the network starts as plain OS processes: pid files, logs, and proof that a pid is still ours."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class PortInUse(RuntimeError):
    pass


@dataclass(frozen=True)
class ManagedProcess:
    """One long-running process of a run directory, identified by name."""

    run_root: Path
    name: str

    @property
    def pid_file(self) -> Path:
        return self.run_root / "pids" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_root / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid if the process is running and is the one we started: the pid file records the kernel's
        start time of the process, so a pid reused by another process is never taken for ours."""
        try:
            pid, started = (int(part) for part in self.pid_file.read_text().split())
        except (OSError, ValueError):
            return None
        state = _proc_state(pid)
        if state is None or state[1] != started or state[0] == "Z":  # Z: exited, not yet reaped
            return None
        return pid

    def start(self, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        state = _proc_state(process.pid)
        self.pid_file.write_text(f"{process.pid} {state[1] if state else 0}")
        return process.pid

    def stop(self, timeout: float = 10.0) -> bool:
        """Stops the process (TERM, then KILL after timeout); True if it was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            _reap(pid)
            time.sleep(0.05)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
            while self.pid() is not None:
                _reap(pid)
                time.sleep(0.05)
        _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL, as a crash would: for fault tests."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while self.pid() is not None:
                _reap(pid)
                time.sleep(0.05)


def _proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) of a process, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[19])


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: whoever started it reaps it
        os.waitpid(pid, os.WNOHANG)


def check_ports_free(ports: dict[str, int], host: str) -> None:
    """Raises PortInUse naming the first port something else is listening on."""
    for what, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                raise PortInUse(
                    f"port {port} ({what}) on {host} is already in use by another process; "
                    f"stop it or move the network with GRIDLEDGER_PORT_BASE"
                ) from None
