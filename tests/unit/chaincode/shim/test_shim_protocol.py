"""The chaincode server's side of Fabric's chaincode protocol, driven through a real gRPC stream on 127.0.0.1.

The test plays the peer: it dials the server, answers REGISTER with REGISTERED and READY, sends TRANSACTIONs that
carry real SignedProposals, answers the ledger calls the chaincode makes, and checks what comes back. This tests
our handler against the protocol as fabric-chaincode-go speaks it; it does not stand in for a Fabric peer.
"""

import datetime
import hashlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.peer import (
    chaincode_pb2,
    chaincode_shim_pb2,
    proposal_pb2,
)
from google.protobuf.timestamp_pb2 import Timestamp
from played_peer import (
    CHANNEL,
    PACKAGE_ID,
    Message,
    PlayedPeer,
    completed_response,
    connected,
    served,
    signed_proposal,
)

from chaincode.contracts.records import RecordsContract
from chaincode.shim import Chaincode
from chaincode.shim.server import ChaincodeServer
from chaincode.shim.testing import make_identity


@pytest.fixture(scope="module")
def alice():
    return make_identity("Org1MSP", "alice")


@pytest.fixture(scope="module")
def server():
    with served(RecordsContract(), "Org1MSP") as server:
        yield server


@pytest.fixture
def peer(server):
    with connected(server) as played:
        yield played


def test_registers_with_the_package_id_first(peer):
    register = peer.receive()
    assert register.type == Message.REGISTER
    assert chaincode_pb2.ChaincodeID.FromString(register.payload).name == PACKAGE_ID
    assert register.txid == "" and register.channel_id == ""


def test_transaction_puts_state_and_completes_with_response_and_event(peer, alice):
    peer.register()
    tx_id = peer.transaction(alice, "records:put_record", "meter-1", '{"kwh": 3}')

    put = peer.receive()
    assert put.type == Message.PUT_STATE and put.txid == tx_id and put.channel_id == CHANNEL
    written = chaincode_shim_pb2.PutState.FromString(put.payload)
    assert (written.key, written.value, written.collection) == ("meter-1", b'{"kwh":3}', "")
    peer.answer(put)

    completed = peer.receive()
    assert completed.txid == tx_id
    response = completed_response(completed)
    assert response.status == 200
    assert json.loads(response.payload)["key"] == "meter-1"
    assert completed.chaincode_event.event_name == "RecordPut"
    assert json.loads(completed.chaincode_event.payload)["hash"] == hashlib.sha256(b'{"kwh":3}').hexdigest()


def test_get_state_returns_what_the_peer_answered(peer, alice):
    peer.register()
    peer.transaction(alice, "records:get_record", "meter-1")
    get = peer.receive()
    assert get.type == Message.GET_STATE
    assert chaincode_shim_pb2.GetState.FromString(get.payload).key == "meter-1"
    peer.answer(get, b'{"kwh":3}')
    assert completed_response(peer.receive()).payload == b'{"kwh":3}'


def test_missing_key_is_an_empty_answer_and_the_contract_says_so(peer, alice):
    peer.register()
    peer.transaction(alice, "records:get_record", "nothing")
    peer.answer(peer.receive(), b"")
    response = completed_response(peer.receive())
    assert response.status == 500
    assert response.message == "failed to get record: no record with key 'nothing'"


def test_peer_error_reaches_the_caller_as_the_chaincode_error(peer, alice):
    peer.register()
    peer.transaction(alice, "records:get_private_record", "RA1", "c1")
    get = peer.receive()
    assert chaincode_shim_pb2.GetState.FromString(get.payload).collection == "RA1"
    refusal = (
        "GET_STATE failed: transaction ID: x: tx creator does not have read access permission on "
        "privatedata in chaincodeName:gridledger collectionName: RA1"
    )
    peer.answer(get, error=refusal)
    response = completed_response(peer.receive())
    assert response.status == 500
    assert response.message == f"failed to get private record: {refusal}"


def test_range_query_pages_with_query_state_next(peer, alice):
    peer.register()
    peer.transaction(alice, "records:get_records_by_range", "", "")
    query = peer.receive()
    assert query.type == Message.GET_STATE_BY_RANGE
    bounds = chaincode_shim_pb2.GetStateByRange.FromString(query.payload)
    assert (bounds.startKey, bounds.endKey) == ("\x01", "")  # an empty start key never reaches composite keys

    def page(keys, has_more):
        results = [
            chaincode_shim_pb2.QueryResultBytes(
                resultBytes=kv_query_result_pb2.KV(key=key, value=json.dumps({"n": key}).encode()).SerializeToString()
            )
            for key in keys
        ]
        return chaincode_shim_pb2.QueryResponse(results=results, has_more=has_more, id="q-1").SerializeToString()

    peer.answer(query, page(["a", "b"], has_more=True))
    next_page = peer.receive()
    assert next_page.type == Message.QUERY_STATE_NEXT
    assert chaincode_shim_pb2.QueryStateNext.FromString(next_page.payload).id == "q-1"
    peer.answer(next_page, page(["c"], has_more=False))
    response = completed_response(peer.receive())  # exhausted: no QUERY_STATE_CLOSE needed
    assert [r["key"] for r in json.loads(response.payload)] == ["a", "b", "c"]


def test_history_is_read_from_key_modifications(peer, alice):
    peer.register()
    peer.transaction(alice, "records:get_history", "meter-1")
    query = peer.receive()
    assert query.type == Message.GET_HISTORY_FOR_KEY
    stamp = Timestamp(seconds=1714564800)
    modifications = [
        kv_query_result_pb2.KeyModification(tx_id="t2", is_delete=True, timestamp=stamp),
        kv_query_result_pb2.KeyModification(tx_id="t1", value=b'{"kwh":1}', timestamp=stamp),
    ]
    peer.answer(
        query,
        chaincode_shim_pb2.QueryResponse(
            results=[chaincode_shim_pb2.QueryResultBytes(resultBytes=m.SerializeToString()) for m in modifications]
        ).SerializeToString(),
    )
    history = json.loads(completed_response(peer.receive()).payload)
    assert [(h["tx_id"], h["is_delete"], h["record"]) for h in history] == [
        ("t2", True, None),
        ("t1", False, {"kwh": 1}),
    ]
    assert history[0]["timestamp"] == "2024-05-01T12:00:00+00:00"


def test_transactions_run_concurrently_and_answers_are_matched_by_txid(peer, alice):
    peer.register()
    first = peer.transaction(alice, "records:get_record", "k1")
    second = peer.transaction(alice, "records:get_record", "k2")
    calls = {message.txid: message for message in (peer.receive(), peer.receive())}
    assert set(calls) == {first, second}
    peer.answer(calls[second], b'{"which":2}')  # answer in the other order
    peer.answer(calls[first], b'{"which":1}')
    results = {message.txid: completed_response(message).payload for message in (peer.receive(), peer.receive())}
    assert results == {first: b'{"which":1}', second: b'{"which":2}'}


def test_init_completes_or_fails_with_the_chaincodes_message(peer, alice):
    peer.register()
    _, proposal = signed_proposal(alice, [])
    peer.send(
        type=Message.INIT,
        txid="init-1",
        channel_id=CHANNEL,
        proposal=proposal,
        payload=chaincode_pb2.ChaincodeInput(args=[], is_init=True).SerializeToString(),
    )
    assert completed_response(peer.receive()).status == 200
    args = [b"records:get_record", b"k"]
    _, proposal = signed_proposal(alice, args)
    peer.send(
        type=Message.INIT,
        txid="init-2",
        channel_id=CHANNEL,
        proposal=proposal,
        payload=chaincode_pb2.ChaincodeInput(args=args, is_init=True).SerializeToString(),
    )
    peer.answer(peer.receive(), b"")
    failed = peer.receive()
    assert (failed.type, failed.txid, failed.payload) == (
        Message.ERROR,
        "init-2",
        b"failed to get record: no record with key 'k'",
    )


def test_keepalive_is_echoed_in_any_state(peer):
    peer.receive()  # REGISTER
    peer.send(type=Message.KEEPALIVE, txid="ka-1")
    echoed = peer.receive()
    assert (echoed.type, echoed.txid) == (Message.KEEPALIVE, "ka-1")


def test_transaction_before_ready_is_an_error_and_ends_the_stream(peer, alice):
    peer.receive()  # REGISTER
    peer.send(type=Message.REGISTERED)
    peer.transaction(alice, "records:get_record", "k1")
    error = peer.receive()
    assert error.type == Message.ERROR
    assert b"cannot handle message (TRANSACTION) while in state: established" in error.payload
    with pytest.raises(StopIteration):
        peer.receive()


def test_unmatched_response_is_an_error(peer):
    peer.register()
    peer.send(type=Message.RESPONSE, txid="nobody", channel_id=CHANNEL)
    assert peer.receive().type == Message.ERROR


def test_bad_proposal_is_answered_with_error_for_its_txid(peer):
    peer.register()
    peer.send(
        type=Message.TRANSACTION,
        txid="t-bad",
        channel_id=CHANNEL,
        proposal=proposal_pb2.SignedProposal(proposal_bytes=b"\xff\xff"),
        payload=chaincode_pb2.ChaincodeInput(args=[b"records:get_record", b"k"]).SerializeToString(),
    )
    error = peer.receive()
    assert (error.type, error.txid) == (Message.ERROR, "t-bad")
    assert error.payload.startswith(b"failed to create new ChaincodeStub")


def _certificate(subject: str, issuer_key, issuer_name, key, is_ca: bool, sans=()):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_mutual_tls_admits_a_peer_with_a_client_certificate_and_refuses_one_without():
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tlsca")])
    ca = _certificate("tlsca", ca_key, ca_name, ca_key, is_ca=True)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server_cert = _certificate(
        "chaincode",
        ca_key,
        ca_name,
        server_key,
        False,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client_cert = _certificate("peer0", ca_key, ca_name, client_key, False)
    server = ChaincodeServer(
        Chaincode([RecordsContract()]),
        PACKAGE_ID,
        "127.0.0.1:0",
        tls_cert=_pem(server_cert),
        tls_key=_key_pem(server_key),
        client_ca=_pem(ca),
    )
    server.start()
    try:
        admitted = grpc.ssl_channel_credentials(_pem(ca), _key_pem(client_key), _pem(client_cert))
        with grpc.secure_channel(f"127.0.0.1:{server.port}", admitted) as channel:
            played = PlayedPeer(channel)
            assert played.receive().type == Message.REGISTER
            played.hang_up()
        anonymous = grpc.ssl_channel_credentials(_pem(ca))
        with grpc.secure_channel(f"127.0.0.1:{server.port}", anonymous) as channel, pytest.raises(grpc.RpcError):
            PlayedPeer(channel).receive()
    finally:
        server.stop(0)


def test_server_command_registers_with_its_package_id_and_stops_on_sigterm():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "CHAINCODE_ID": PACKAGE_ID, "CORE_PEER_LOCALMSPID": "Org1MSP"}
    server = subprocess.Popen(
        [sys.executable, "-m", "chaincode.server", "--address", f"127.0.0.1:{port}"],
        cwd=Path(__file__).resolve().parents[4],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            played = PlayedPeer(channel)
            register = played.receive()
            assert chaincode_pb2.ChaincodeID.FromString(register.payload).name == PACKAGE_ID
            played.hang_up()
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=15)
        assert server.returncode == 0, output
        assert "stopping the chaincode server" in output
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
