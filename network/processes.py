"""Processes the network starts as plain OS processes: pid files, logs, and proof that a pid is still ours."""

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = "GRIDLEDGER_PROCESS"


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

    @property
    def marker(self) -> str:
        return f"{self.run_root.resolve()}#{self.name}"

    def pid(self) -> int | None:
        """The pid if the process is running and is the one we started (a reused pid is not ours)."""
        try:
            pid = int(self.pid_file.read_text())
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if f"{MARKER}={self.marker}".encode() not in environ:
            return None
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
                return None  # exited, not yet reaped by whoever started it
        except (OSError, IndexError):
            return None
        return pid

    def start(self, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(argv, env={**env, MARKER: self.marker}, cwd=cwd, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        self.pid_file.write_text(str(process.pid))
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


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: whoever started it reaps it


def check_ports_free(ports: dict[str, int], host: str) -> None:
    """Raises PortInUse naming the first port something else is listening on."""
    for what, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                raise PortInUse(f"port {port} ({what}) on {host} is already in use by another process; "
                                f"stop it or move the network with GRIDLEDGER_PORT_BASE") from None
