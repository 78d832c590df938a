"""What a chaincode answers a transaction with: the status, message and payload of a peer.Response."""

from dataclasses import dataclass

OK = 200
# The endorser treats a status at or above this as the chaincode refusing the transaction.
ERROR_THRESHOLD = 400
BAD_REQUEST = 400
ERROR = 500


@dataclass(frozen=True)
class Response:
    status: int
    message: str = ""
    payload: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status < ERROR_THRESHOLD


def success(payload: bytes = b"") -> Response:
    return Response(OK, "", payload)


def error(message: str, status: int = ERROR) -> Response:
    return Response(status, message)
