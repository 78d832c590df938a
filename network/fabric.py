"""Builds Fabric's commands from the source of a release into a cache outside the checkout, keyed by version.

The source is the tag's tree with its vendored modules (`vendor/`), so `go build -mod=vendor` needs no module
downloads: `../shared/fabric/fabric-v<version>.tar.gz` beside the checkout when present (a `git archive` of the
tag), else GitHub's source archive of the tag. `FABRIC_SOURCE` names another archive, a path or a URL. Whatever
the archive, the tree it holds is checked against TREE_SHA256 before anything is built from it: an archive's own
bytes differ between `git archive` and GitHub's download (a top directory, compression, file modes), the files
do not. The build goes to a temporary directory moved into place at the end, so an interrupted build leaves no
half cache; a second run finds the binaries cached and costs nothing.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

VERSION = "3.1.5"
# What `git archive v3.1.5` holds, hashed by tree_sha256: the file list with each file's exec bit and SHA-256.
TREE_SHA256 = "6fe70c84d4b3949d93a6ea76019657dea6e51d8cfbe8f04da75cbd9724bc9ec9"
# The SHA-256 of ../shared/fabric/fabric-v3.1.5.tar.gz (git archive of the tag, as its .sha256 file says), named
# in the log when seen. It proves nothing alone: every archive, this one too, is extracted and its tree checked.
ARCHIVE_SHA256 = "eb0c5820b5f455f3ae3f0548f9012551fb2d380ae1591d5a9eb33f3bebb079d9"
# The commit the tag names (git archive records it in the tar's pax header).
COMMIT = "86c1172bec37e6590c6b1ae6f847833df48d65fc"
DOWNLOAD_URL = f"https://github.com/hyperledger/fabric/archive/refs/tags/v{VERSION}.tar.gz"
SHARED_ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "fabric" / f"fabric-v{VERSION}.tar.gz"

# The Go module of our own tool (tamper), resolved through the Go module proxy; Fabric is not in it.
FABRIC_BUILD = Path(__file__).resolve().parent / "fabric-build"
COMMANDS = ("peer", "orderer", "configtxgen", "cryptogen", "osnadmin")
MODULE = "github.com/hyperledger/fabric"


class FabricUnavailable(RuntimeError):
    """Fabric's binaries are not built and cannot be built here."""


def pinned_version() -> str:
    """The Fabric version the network runs: VERSION, or GRIDLEDGER_FABRIC_VERSION naming another build already in
    the cache (e.g. to compare a failure with an older build's); only VERSION can be built."""
    return os.environ.get("GRIDLEDGER_FABRIC_VERSION") or VERSION


def cache_root() -> Path:
    return Path(os.environ.get("GRIDLEDGER_CACHE", Path.home() / ".cache" / "gridledger"))


def install_dir() -> Path:
    return cache_root() / f"fabric-{pinned_version()}"


def bin_dir() -> Path:
    return install_dir() / "bin"


def sampleconfig_dir() -> Path:
    return install_dir() / "sampleconfig"


def is_built() -> bool:
    return all((bin_dir() / c).is_file() for c in COMMANDS) and (sampleconfig_dir() / "core.yaml").is_file()


def require_built() -> Path:
    """The binary directory, or FabricUnavailable saying how to build it."""
    if not is_built():
        raise FabricUnavailable(f"Fabric {pinned_version()} is not built in {bin_dir()}: run `make fabric`")
    return bin_dir()


def source() -> str:
    """The archive to build from: FABRIC_SOURCE (a path or a URL), else the shared archive, else the download."""
    named = os.environ.get("FABRIC_SOURCE")
    if named:
        return named
    return str(SHARED_ARCHIVE) if SHARED_ARCHIVE.is_file() else DOWNLOAD_URL


def build(log=print) -> Path:
    if is_built():
        log(f"fabric: {pinned_version()} already built in {bin_dir()}")
        return bin_dir()
    if pinned_version() != VERSION:
        raise FabricUnavailable(
            f"fabric: {pinned_version()} (GRIDLEDGER_FABRIC_VERSION) is not in {install_dir()}; only {VERSION} "
            "is built here: unset GRIDLEDGER_FABRIC_VERSION"
        )
    if shutil.which("go") is None:
        raise FabricUnavailable("fabric: `go` is not on PATH; Fabric is built from its Go source")
    started = time.monotonic()
    cache_root().mkdir(parents=True, exist_ok=True)
    # Everything this build writes is under staging, a directory of its own beside the install; nothing else
    # is ever removed (a source archive named by FABRIC_SOURCE or shared beside the checkout is only read).
    staging = Path(tempfile.mkdtemp(prefix=f"fabric-{VERSION}.partial-", dir=cache_root()))
    staging.chmod(0o755)
    try:
        where = source()
        archive = _fetch(where, staging, log)
        digest = _sha256_file(archive)
        known = digest == ARCHIVE_SHA256
        log(f"fabric: archive SHA-256 {digest}" + (" (git archive of the tag)" if known else ""))
        tree = _extract(archive, staging / "src")
        found = tree_sha256(tree)
        if found != TREE_SHA256:
            raise FabricUnavailable(
                f"fabric: the tree in {where} is not Fabric v{VERSION}'s: its digest is {found}, "
                f"v{VERSION}'s is {TREE_SHA256}. Nothing was built."
            )
        log(f"fabric: the tree is v{VERSION}'s (commit {COMMIT}); building {', '.join(COMMANDS)}")
        install = staging / "install"
        _build_commands(tree, install / "bin")
        _check_version(install / "bin" / "peer")
        shutil.copytree(tree / "sampleconfig", install / "sampleconfig")
        (install / "BUILD-INFO.json").write_text(
            json.dumps(
                {
                    "version": VERSION,
                    "commit": COMMIT,
                    "source": where,
                    "archive_sha256": digest,
                    "tree_sha256": found,
                    "go": _go_version(),
                },
                indent=2,
            )
            + "\n"
        )
        install.chmod(0o755)
        _move_into_place(install, staging, log)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"fabric: built {VERSION} in {time.monotonic() - started:.0f} s into {bin_dir()}")
    return bin_dir()


def _move_into_place(install: Path, staging: Path, log) -> None:
    """Renames the finished install to install_dir(). A complete install found there (another build finished
    meanwhile, and may be in use) is kept; an incomplete one (a file gone) is first moved into staging, whose
    removal then takes it with it."""
    target = install_dir()
    if is_built():
        log(f"fabric: {VERSION} was built meanwhile in {bin_dir()}; keeping it")
        return
    if target.exists() or target.is_symlink():
        log(f"fabric: replacing the incomplete install in {target}")
        target.rename(staging / "incomplete")
    install.rename(target)


def tree_sha256(root: Path) -> str:
    """SHA-256 over every file under root, in path order: its path, whether it is executable (or a symlink's
    target), and its content's SHA-256. Independent of the archive's format, top directory, times and owners."""
    digest = hashlib.sha256()
    paths = sorted(p for p in root.rglob("*") if not p.is_dir() or p.is_symlink())
    for path in paths:
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            entry = f"l {os.readlink(path)}"
        else:
            entry = ("x " if path.stat().st_mode & 0o100 else "f ") + _sha256_file(path)
        digest.update(f"{name}\0{entry}\n".encode())
    return digest.hexdigest()


def _fetch(where: str, staging: Path, log) -> Path:
    if where.startswith(("https://", "http://")):
        target = staging / "source.tar.gz"
        log(f"fabric: downloading {where}")
        try:
            with urllib.request.urlopen(where, timeout=60) as answer, target.open("wb") as out:
                shutil.copyfileobj(answer, out)
        except OSError as error:
            raise FabricUnavailable(
                f"fabric: could not download {where}: {error}. Set FABRIC_SOURCE to a local copy of the tag's source "
                f"archive (git archive v{VERSION}, or GitHub's), e.g. {SHARED_ARCHIVE}"
            ) from None
        return target
    path = Path(where).expanduser()
    if not path.is_file():
        raise FabricUnavailable(f"fabric: the source archive {path} does not exist (FABRIC_SOURCE or {SHARED_ARCHIVE})")
    log(f"fabric: building from {path}")
    return path


def _extract(archive: Path, target: Path) -> Path:
    """The tree in the archive, extracted with tarfile's "data" filter (no absolute paths, no links out, no device
    files); GitHub's archive puts it under one top directory, git archive's at the root."""
    if not hasattr(tarfile, "data_filter"):
        raise FabricUnavailable("fabric: extracting the source safely needs Python 3.11.4 or later (tarfile's filters)")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise FabricUnavailable(f"fabric: could not extract {archive}: {error}") from None
    entries = list(target.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not (target / "go.mod").exists():
        return entries[0]
    return target


def _build_commands(tree: Path, out: Path) -> None:
    out.mkdir(parents=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=vendor", GOPROXY="off", GOTOOLCHAIN="local")
    argv = [
        "go",
        "build",
        "-trimpath",
        "-ldflags",
        f"-X {MODULE}/common/metadata.Version={VERSION} -X {MODULE}/common/metadata.CommitSHA={COMMIT[:7]}",
        "-o",
        f"{out}/",
        *(f"./cmd/{c}" for c in COMMANDS),
    ]
    done = subprocess.run(argv, cwd=tree, env=env, text=True, capture_output=True)
    if done.returncode != 0:
        raise FabricUnavailable(
            f"fabric: `{' '.join(argv)}` in the v{VERSION} tree failed (offline, vendored modules):\n"
            f"{done.stderr.strip()[-4000:]}"
        )


def _check_version(peer: Path) -> None:
    """The version stamped into the binaries is the one built: `peer version` says so."""
    out = subprocess.run([str(peer), "version"], text=True, capture_output=True).stdout
    if f"Version: {VERSION}\n" not in out:
        raise FabricUnavailable(f"fabric: the built peer does not say it is {VERSION}: `peer version` printed\n{out}")


def _go_version() -> str:
    return subprocess.run(["go", "version"], text=True, capture_output=True).stdout.strip()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


if __name__ == "__main__":
    try:
        build()
    except FabricUnavailable as error:
        sys.exit(str(error))
