"""Builds Fabric's commands from its Go module into a cache outside the checkout, keyed by the pinned version.

The version is the one `network/fabric-build/go.mod` requires; `go build` resolves it through that module's
go.sum, so every machine builds the same binaries. A second run finds them cached and costs nothing.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

FABRIC_BUILD = Path(__file__).resolve().parent / "fabric-build"
COMMANDS = ("peer", "orderer", "configtxgen", "cryptogen", "osnadmin")
MODULE = "github.com/hyperledger/fabric"


class FabricUnavailable(RuntimeError):
    """Fabric's binaries are not built and cannot be built here."""


def pinned_version() -> str:
    text = (FABRIC_BUILD / "go.mod").read_text()
    match = re.search(r"^\s*github\.com/hyperledger/fabric (\S+)", text, re.MULTILINE)
    if not match:
        raise FabricUnavailable(f"{FABRIC_BUILD / 'go.mod'} does not require {MODULE}")
    return match.group(1)


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


def build(log=print) -> Path:
    if is_built():
        log(f"fabric: {pinned_version()} already built in {bin_dir()}")
        return bin_dir()
    if shutil.which("go") is None:
        raise FabricUnavailable("fabric: `go` is not on PATH; Fabric is built from its Go module")
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=readonly")
    started = time.monotonic()
    log(f"fabric: downloading {MODULE}@{pinned_version()} and its dependencies through the Go module proxy")
    _go(["mod", "download"], env, "download the modules")
    staging = install_dir().with_name(install_dir().name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "bin").mkdir(parents=True)
    for command in COMMANDS:
        log(f"fabric: building {command} ({time.monotonic() - started:.0f} s)")
        _go(
            ["build", "-trimpath", "-o", str(staging / "bin" / command), f"{MODULE}/cmd/{command}"],
            env,
            f"build {command}",
        )
    module_dir = _go(["list", "-m", "-f", "{{.Dir}}", MODULE], env, "locate the module").strip()
    shutil.copytree(Path(module_dir) / "sampleconfig", staging / "sampleconfig")
    for path in (staging / "sampleconfig").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the module cache is read-only
    shutil.rmtree(install_dir(), ignore_errors=True)
    staging.rename(install_dir())
    log(f"fabric: built {', '.join(COMMANDS)} in {time.monotonic() - started:.0f} s into {bin_dir()}")
    return bin_dir()


def _go(args: list[str], env: dict, what: str) -> str:
    done = subprocess.run(
        ["go", *args], cwd=FABRIC_BUILD, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    if done.returncode != 0:
        raise FabricUnavailable(
            f"fabric: could not {what}: `go {' '.join(args)}` in {FABRIC_BUILD} failed:\n{done.stderr.strip()}\n"
            f"Tried: {MODULE}@{pinned_version()} through GOPROXY={env.get('GOPROXY') or _goenv('GOPROXY')}."
        )
    return done.stdout


def _goenv(name: str) -> str:
    return subprocess.run(["go", "env", name], text=True, stdout=subprocess.PIPE).stdout.strip()


if __name__ == "__main__":
    try:
        build()
    except FabricUnavailable as error:
        sys.exit(str(error))
