"""Generates Fabric's Python protobuf and gRPC modules into a build directory, under the `fabric_protos` prefix.

The Go bindings Fabric v3.1.5 itself builds with (github.com/hyperledger/fabric-protos-go-apiv2 v0.3.7, pinned
in network/fabric-build/go.mod and fetched through the Go module proxy) carry every file's descriptor, the chaincode
protocol's batched calls (WRITE_BATCH_STATE, GET_STATE_MULTIPLE) and SmartBFT's configuration included.
`network/fabric-build/protoset` dumps them as a FileDescriptorSet; protoc generates from that set.
"""

import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

PREFIX = "fabric_protos"
FABRIC_BUILD = Path(__file__).resolve().parent / "fabric-build"
# Registered by Go libraries beside Fabric's own files; nothing of Fabric's imports them.
FOREIGN = ("github.com/", "grpc/")


def fabric_descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    raw = subprocess.run(["go", "run", "./protoset"], cwd=FABRIC_BUILD, check=True, stdout=subprocess.PIPE).stdout
    descriptors = descriptor_pb2.FileDescriptorSet()
    descriptors.ParseFromString(raw)
    return descriptors


def prefixed(descriptors: descriptor_pb2.FileDescriptorSet) -> descriptor_pb2.FileDescriptorSet:
    """Moves every file under PREFIX/ so the generated imports read `from fabric_protos.peer import ...`."""

    def moved(name: str) -> str:
        return name if name.startswith("google/protobuf/") else f"{PREFIX}/{name}"

    out = descriptor_pb2.FileDescriptorSet()
    for file in descriptors.file:
        if file.name.startswith(FOREIGN):
            continue
        copy = out.file.add()
        copy.CopyFrom(file)
        copy.name = moved(file.name)
        copy.dependency[:] = [moved(d) for d in file.dependency]
    return out


def generate(target: Path) -> list[str]:
    from grpc_tools import protoc

    target.mkdir(parents=True, exist_ok=True)
    descriptors = prefixed(fabric_descriptor_set())
    set_path = target / "fabric.protoset"
    set_path.write_bytes(descriptors.SerializeToString(deterministic=True))
    # google/protobuf stays in the set for protoc to resolve imports; Python ships those modules itself.
    names = [f.name for f in descriptors.file if f.name.startswith(PREFIX)]
    status = protoc.main(
        ["protoc", f"--descriptor_set_in={set_path}", f"--python_out={target}", f"--grpc_python_out={target}", *names]
    )
    if status != 0:
        raise SystemExit(f"protoc failed with status {status}")
    return names


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/protos")
    print(f"generated {len(generate(out))} Fabric proto modules into {out}/{PREFIX}")
