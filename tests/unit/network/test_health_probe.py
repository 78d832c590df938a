"""The bring-up's health probe: only a node whose operations server answers HTTP 200 {"status": "OK"} and whose gRPC
listener accepts a real connection is up; every other answer (not HTTP, not JSON, not an object, an error status, a
socket that connected to itself) means "not up yet", never an exception."""

import socket
import threading
from contextlib import contextmanager

import pytest

from consortium.topology import Node
from network import nodes

HEALTHY = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"OK"}'


def _http(status: str, body: bytes) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


@contextmanager
def operations_server(answer: bytes, kind: str = "peer", admin_listening: bool = True):
    """A node whose operations port answers every connection with `answer` and whose listen port (and an
    orderer's admin port, if admin_listening) accepts connections."""
    while True:  # listen, admin and operations ports are base, base + 1, base + 2 (consortium.topology)
        operations = socket.create_server(("127.0.0.1", 0))
        port = operations.getsockname()[1]
        try:
            listener = socket.create_server(("127.0.0.1", port - 2))
            admin = socket.create_server(("127.0.0.1", port - 1))
            break
        except OSError:
            operations.close()
    if not admin_listening:
        admin.close()
    stop = threading.Event()

    def serve():
        operations.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = operations.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(4096)
                connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    node = Node(f"{kind}0", kind, "Org", f"{kind}0.example", "127.0.0.1", 0, port - 2)
    try:
        yield node
    finally:
        stop.set()
        thread.join()
        operations.close()
        listener.close()
        admin.close()


def test_a_node_answering_ok_with_its_listener_open_is_up():
    with operations_server(HEALTHY) as node:
        assert nodes.healthy(node)
    with operations_server(HEALTHY, kind="orderer") as node:
        assert nodes.healthy(node)


def test_an_orderer_whose_admin_listener_is_not_up_yet_is_not_up():
    with operations_server(HEALTHY, kind="orderer", admin_listening=False) as node:
        assert nodes.healthy(node) is False


@pytest.mark.parametrize(
    "answer",
    [
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # what a probe connected to itself reads back
        b"\x00\x01garbage",
        b"",
        _http("503 Service Unavailable", b'{"status":"Service Unavailable"}'),
        _http("200 OK", b"not json"),
        _http("200 OK", b'["OK"]'),
        _http("200 OK", b'{"status": "starting"}'),
        _http("200 OK", b'{"status":"OK"'),  # cut short
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{",  # fewer bytes than announced
    ],
)
def test_any_other_answer_means_not_up_yet(answer):
    with operations_server(answer) as node:
        assert nodes.healthy(node, timeout=1.0) is False


def test_a_listener_probe_that_connected_to_itself_is_not_up(monkeypatch):
    with operations_server(HEALTHY) as node:
        itself = socket.socket()
        itself.bind(("127.0.0.1", 0))
        itself.connect(itself.getsockname())  # TCP simultaneous open: what a port in the ephemeral range allows
        monkeypatch.setattr(nodes.socket, "create_connection", lambda *args, **kwargs: itself)
        assert nodes.healthy(node) is False


def test_the_consensus_role_is_read_from_the_metrics_and_unknown_otherwise():
    metrics = (
        b"# HELP consensus_etcdraft_is_leader The leadership status of the current node.\n"
        b'consensus_etcdraft_is_leader{channel="other"} 0\n'
        b'consensus_etcdraft_is_leader{channel="grid"} 1\n'
        b'consensus_BFT_is_leader{channel="bft"} 1\n'
    )
    with operations_server(_http("200 OK", metrics), kind="orderer") as node:
        assert nodes.is_leader(node, "grid") is True
        assert nodes.is_leader(node, "other") is False
        assert nodes.is_leader(node, "missing") is None
        # Each consensus type reads its own gauge, never the other's.
        assert nodes.is_leader(node, "bft", "BFT") is True
        assert nodes.is_leader(node, "grid", "BFT") is None
        assert nodes.is_leader(node, "bft") is None
    with operations_server(b"garbage", kind="orderer") as node:
        assert nodes.is_leader(node, "grid") is None
