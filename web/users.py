"""Web sign-in passwords, one per account, kept as werkzeug hashes in the network's run directory, apart for
each organisation's server (each reads only its own directory):

    <run>/web/<ORG>/users.json             {name: password hash}, mode 0600; the server reads only this
    <run>/web/<ORG>/initial-passwords.txt  the generated passwords in clear, mode 0600, for the operator to hand
                                           out (as Jenkins' initialAdminPassword); delete it once handed out
    <run>/web/<ORG>/secret-key             the key signing the server's session cookies, so sessions survive a
                                           restart and no other organisation's server accepts them

Passwords are generated (secrets.token_urlsafe) for accounts that have none; `reset_password` makes a new one.
"""

import json
import os
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path

from werkzeug.security import generate_password_hash

WEB_DIR = "web"
USERS_FILE = "users.json"
INITIAL_PASSWORDS_FILE = "initial-passwords.txt"
SECRET_KEY_FILE = "secret-key"


def _write_private(path: Path, text: str) -> None:
    """Writes a file only its owner may read, created with that mode (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(temporary, path)


def web_dir(run_dir: str | Path, org: str) -> Path:
    """Where `org`'s web server keeps its sign-ins."""
    return Path(run_dir) / WEB_DIR / org


def _new_password() -> str:
    return secrets.token_urlsafe(9)  # 12 characters, 72 bits


def ensure_users(run_dir: str | Path, org: str, names: list[str]) -> dict[str, str]:
    """The password hashes of `names` on `org`'s server, generating a password for each account that has none yet
    (and adding it to the initial passwords file). Returns {name: hash}."""
    web = web_dir(run_dir, org)
    users_file = web / USERS_FILE
    hashes = json.loads(users_file.read_text()) if users_file.exists() else {}
    new = {name: _new_password() for name in names if name not in hashes}
    if new:
        hashes.update({name: generate_password_hash(password) for name, password in new.items()})
        _write_private(users_file, json.dumps(hashes, indent=2, sort_keys=True))
        initial = web / INITIAL_PASSWORDS_FILE
        lines = initial.read_text().splitlines() if initial.exists() else []
        _write_private(initial, "\n".join(lines + [f"{name} {password}" for name, password in new.items()]) + "\n")
    return {name: hashes[name] for name in names}


def reset_password(run_dir: str | Path, org: str, name: str) -> str:
    """A new password for `name` on `org`'s server (its sessions end: they are bound to the old hash). Returns it
    in clear; the old one leaves the initial passwords file."""
    web = web_dir(run_dir, org)
    users_file = web / USERS_FILE
    hashes = json.loads(users_file.read_text()) if users_file.exists() else {}
    password = _new_password()
    hashes[name] = generate_password_hash(password)
    _write_private(users_file, json.dumps(hashes, indent=2, sort_keys=True))
    initial = web / INITIAL_PASSWORDS_FILE
    if initial.exists():
        kept = [line for line in initial.read_text().splitlines() if line.split(" ", 1)[0] != name]
        _write_private(initial, "\n".join(kept) + "\n" if kept else "")
    return password


class UsersFile(Mapping):
    """{name: password hash} from `org`'s users file, read again when it changes (a reset applies at once)."""

    def __init__(self, run_dir: str | Path, org: str):
        self.path = web_dir(run_dir, org) / USERS_FILE
        self._stamp = None
        self._hashes: dict[str, str] = {}
        self._lock = threading.Lock()

    def _current(self) -> dict[str, str]:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            return {}
        with self._lock:
            if stamp != self._stamp:
                self._hashes = json.loads(self.path.read_text())
                self._stamp = stamp
            return self._hashes

    def __getitem__(self, name: str) -> str:
        return self._current()[name]

    def __iter__(self):
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


def initial_passwords(run_dir: str | Path, org: str) -> dict[str, str]:
    """The generated passwords still in `org`'s initial passwords file (empty once it is deleted)."""
    path = web_dir(run_dir, org) / INITIAL_PASSWORDS_FILE
    if not path.exists():
        return {}
    return dict(line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)


def secret_key(run_dir: str | Path, org: str) -> str:
    """The key `org`'s server signs its session cookies with (made on first use)."""
    path = web_dir(run_dir, org) / SECRET_KEY_FILE
    if not path.exists():
        _write_private(path, secrets.token_hex(32))
    return path.read_text().strip()
