"""The chaincode-as-a-service gRPC server: the peer dials it and opens `protos.Chaincode/Connect`."""

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
from fabric_protos.peer import chaincode_shim_pb2_grpc

from chaincode.shim.contract import ChaincodeInterface
from chaincode.shim.handler import ShimMessage, StreamHandler

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 100 * 1024 * 1024  # as the Go shim and the peer
# The peer pings every minute even when idle; gRPC C-core refuses frequent pings by default and would drop it.
SERVER_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),  # C-core's GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_…
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.http2.max_pings_without_data", 0),
]


class ChaincodeServicer(chaincode_shim_pb2_grpc.ChaincodeServicer):
    def __init__(
        self, chaincode: ChaincodeInterface, package_id: str, peer_msp_id: str | None, transactions: ThreadPoolExecutor
    ):
        self._chaincode = chaincode
        self._package_id = package_id
        self._peer_msp_id = peer_msp_id
        self._transactions = transactions

    def Connect(self, request_iterator: Iterator[ShimMessage], context: grpc.ServicerContext) -> Iterator[ShimMessage]:
        log.info("peer %s connected", context.peer())
        handler = StreamHandler(self._chaincode, self._package_id, self._transactions, self._peer_msp_id)
        context.add_callback(handler.close)
        return handler.serve(request_iterator)


class ChaincodeServer:
    """Serves a chaincode to peers, like fabric-chaincode-go's ChaincodeServer.

    `package_id` is the id the peer installed the package under (label:sha256); `peer_msp_id` is the MSP id of the
    peer this server belongs to (what `stub.get_peer_msp_id()` answers). TLS is on when `tls_cert` and `tls_key`
    (PEM bytes) are given; `client_ca` (PEM) makes it mutual: the peer must present a certificate it issued.
    `max_transactions` bounds how many transactions run at once.
    """

    def __init__(
        self,
        chaincode: ChaincodeInterface,
        package_id: str,
        address: str,
        *,
        peer_msp_id: str | None = None,
        tls_cert: bytes | None = None,
        tls_key: bytes | None = None,
        client_ca: bytes | None = None,
        max_transactions: int = 64,
    ):
        if not package_id:
            raise ValueError(
                "the chaincode package id must be given (label:hash, as `peer lifecycle chaincode "
                "queryinstalled` shows it)"
            )
        if not address:
            raise ValueError("the listen address must be given, e.g. 127.0.0.1:9999")
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("TLS needs both a certificate and its key")
        if client_ca and not tls_cert:
            raise ValueError("a client CA (mutual TLS) needs the server's TLS certificate and key")
        self.address = address
        self._transactions = ThreadPoolExecutor(max_workers=max_transactions, thread_name_prefix="chaincode-tx")
        # Each peer's stream holds one gRPC worker for as long as it is connected.
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=16, thread_name_prefix="chaincode-grpc"), options=SERVER_OPTIONS
        )
        chaincode_shim_pb2_grpc.add_ChaincodeServicer_to_server(
            ChaincodeServicer(chaincode, package_id, peer_msp_id, self._transactions), self._server
        )
        if tls_cert:
            credentials = grpc.ssl_server_credentials(
                [(tls_key, tls_cert)], root_certificates=client_ca, require_client_auth=bool(client_ca)
            )
            self.port = self._server.add_secure_port(address, credentials)
        else:
            self.port = self._server.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot listen on {address}")

    def start(self) -> None:
        self._server.start()
        log.info("chaincode server listening on %s (port %d)", self.address, self.port)

    def wait(self) -> None:
        self._server.wait_for_termination()

    def stop(self, grace: float | None = 5.0) -> None:
        """Stops accepting peers; after `grace` seconds, open streams are cancelled."""
        self._server.stop(grace).wait()
        self._transactions.shutdown(wait=False, cancel_futures=True)
