"""The Gateway client: proposals as Fabric parses them, results, errors, and each call against an in-process gateway."""

import hashlib
import threading
import time
from concurrent import futures

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_event_pb2, chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2
from google.rpc import status_pb2

from chaincode.shim.testing import make_identity
from gateway import (
    CommitError,
    CommitStatusError,
    EndorseError,
    GatewayError,
    Signer,
    SubmitError,
    X509Identity,
    connect,
    grpc_channel_for,
)
from gateway.client import error_details, gateway_error, result_from_envelope
from gateway.protoutil import transaction_id


def member(msp_id="TSOMSP"):
    """An identity, its signer and its certificate (issued by a test CA): enough for everything but a real MSP."""
    test_identity = make_identity(msp_id, f"User1@{msp_id.lower()}")
    return (
        X509Identity(msp_id, test_identity.credentials),
        Signer(test_identity.private_key_pem),
        test_identity.credentials,
    )


def verify_signed_by(serialized_identity: bytes, signature: bytes, message: bytes) -> str:
    """Checks the signature as an MSP would; returns the signer's MSP id."""
    identity = identities_pb2.SerializedIdentity.FromString(serialized_identity)
    x509.load_pem_x509_certificate(identity.id_bytes).public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))
    return identity.mspid


def parse_proposal(signed: proposal_pb2.SignedProposal) -> dict:
    """What a peer reads out of a signed proposal."""
    proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
    extension = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input).chaincode_spec
    return {
        "proposal": proposal,
        "header": header,
        "channel_header": channel_header,
        "signature_header": signature_header,
        "extension": extension,
        "payload": payload,
        "spec": spec,
    }


def prepared_transaction(header: bytes, result: bytes) -> common_pb2.Envelope:
    """A transaction envelope as the gateway assembles it from endorsements (protoutil.CreateTx)."""
    action = proposal_pb2.ChaincodeAction(response=proposal_response_pb2.Response(status=200, payload=result))
    response_payload = proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=b"\x01" * 32, extension=action.SerializeToString()
    )
    action_payload = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=b"",
        action=transaction_pb2.ChaincodeEndorsedAction(proposal_response_payload=response_payload.SerializeToString()),
    )
    signature_header = common_pb2.Header.FromString(header).signature_header
    transaction = transaction_pb2.Transaction(
        actions=[transaction_pb2.TransactionAction(header=signature_header, payload=action_payload.SerializeToString())]
    )
    payload = common_pb2.Payload(header=common_pb2.Header.FromString(header), data=transaction.SerializeToString())
    return common_pb2.Envelope(payload=payload.SerializeToString())


def rich_status(code: grpc.StatusCode, message: str, *details: gateway_pb2.ErrorDetail) -> status_pb2.Status:
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return status


def endorse_refusal(message: str, address: str, msp_id: str, said: str) -> status_pb2.Status:
    """The status the gateway aborts an endorsement with when one peer's chaincode refused."""
    return rich_status(
        grpc.StatusCode.ABORTED, message, gateway_pb2.ErrorDetail(address=address, msp_id=msp_id, message=said)
    )


class FakeRpcError(grpc.RpcError):
    """What grpcio raises for a failed unary call, built by hand."""

    def __init__(self, code, message, status=None):
        self._code, self._message = code, message
        self._metadata = (("grpc-status-details-bin", status.SerializeToString()),) if status else ()

    def code(self):
        return self._code

    def details(self):
        return self._message

    def trailing_metadata(self):
        return self._metadata


@pytest.fixture
def offline_gateway():
    """A gateway whose channel is never dialled: for building proposals."""
    identity, signer, cert = member()
    channel = grpc.insecure_channel("localhost:9")
    yield connect(identity, signer=signer, channel=channel), cert
    channel.close()


def test_transaction_id_is_the_hash_of_nonce_and_creator():
    assert transaction_id(b"n" * 24, b"creator") == hashlib.sha256(b"n" * 24 + b"creator").hexdigest()


def test_proposal_round_trips_with_everything_a_peer_checks(offline_gateway):
    gateway, cert = offline_gateway
    contract = gateway.get_network("grid").get_contract("gridledger", "dr")
    proposal = contract.new_proposal(
        "Declare",
        "cmd-1",
        b"\x00raw",
        transient={"declaration": '{"kwh": 3}'},
        endorsing_organizations=["TSOMSP", "RA1MSP"],
    )
    parsed = parse_proposal(proposal.signed_proposal)

    channel_header, signature_header = parsed["channel_header"], parsed["signature_header"]
    assert channel_header.type == common_pb2.ENDORSER_TRANSACTION
    assert channel_header.channel_id == "grid"
    assert channel_header.epoch == 0
    assert abs(channel_header.timestamp.seconds - time.time()) < 60
    assert parsed["extension"].chaincode_id.name == "gridledger"
    assert parsed["spec"].chaincode_id.name == "gridledger"
    assert list(parsed["spec"].input.args) == [b"dr:Declare", b"cmd-1", b"\x00raw"]
    assert dict(parsed["payload"].TransientMap) == {"declaration": b'{"kwh": 3}'}

    creator = identities_pb2.SerializedIdentity.FromString(signature_header.creator)
    assert (creator.mspid, creator.id_bytes) == ("TSOMSP", cert)
    assert len(signature_header.nonce) == 24
    assert (
        channel_header.tx_id
        == proposal.transaction_id
        == transaction_id(signature_header.nonce, signature_header.creator)
    )
    verify_signed_by(
        signature_header.creator, proposal.signed_proposal.signature, proposal.signed_proposal.proposal_bytes
    )
    assert proposal.endorsing_organizations == ["TSOMSP", "RA1MSP"]


def test_each_proposal_has_its_own_transaction_id(offline_gateway):
    contract = offline_gateway[0].get_network("grid").get_contract("gridledger")
    assert contract.new_proposal("Ping").transaction_id != contract.new_proposal("Ping").transaction_id
    assert list(parse_proposal(contract.new_proposal("Ping").signed_proposal)["spec"].input.args) == [b"Ping"]


def test_arguments_must_be_text_or_bytes(offline_gateway):
    contract = offline_gateway[0].get_network("grid").get_contract("gridledger")
    with pytest.raises(TypeError, match="argument 2 must be str or bytes"):
        contract.new_proposal("PostReading", "c1", 42)


def test_result_is_read_from_the_prepared_transaction():
    header = common_pb2.Header(channel_header=b"", signature_header=b"").SerializeToString()
    assert result_from_envelope(prepared_transaction(header, b'{"ok": true}')) == b'{"ok": true}'
    with pytest.raises(ValueError, match="no chaincode action"):
        result_from_envelope(common_pb2.Envelope(payload=common_pb2.Payload().SerializeToString()))


def test_chaincode_refusal_surfaces_the_chaincodes_message_with_the_details():
    status = endorse_refusal(
        "failed to endorse transaction, see attached details for more info",
        "peer0.ra1:7061",
        "RA1MSP",
        "chaincode response 500, failed to put record: reading kWh must be between 0 and 100, got -3",
    )
    error = gateway_error(
        FakeRpcError(grpc.StatusCode.ABORTED, status.message, status), "endorse", EndorseError, "3fa9"
    )
    assert isinstance(error, EndorseError)
    assert str(error) == "failed to put record: reading kWh must be between 0 and 100, got -3"
    assert error.tx_id == "3fa9" and error.refused
    assert error.details == (
        (
            "peer0.ra1:7061",
            "RA1MSP",
            "chaincode response 500, failed to put record: reading kWh must be between 0 and 100, got -3",
        ),
    )


def test_evaluate_refusal_without_details_still_yields_the_chaincodes_message():
    error = gateway_error(
        FakeRpcError(
            grpc.StatusCode.UNKNOWN,
            "evaluate call to endorser returned error: chaincode response 404, unknown consumer c9",
        ),
        "evaluate",
    )
    assert type(error) is GatewayError
    assert str(error) == "unknown consumer c9" and error.refused
    assert error.details == ()


def test_other_failures_name_the_stage_the_status_and_each_peer():
    status = rich_status(
        grpc.StatusCode.UNAVAILABLE,
        "orderer unreachable",
        gateway_pb2.ErrorDetail(address="orderer0:7050", msp_id="OrdererMSP", message="EOF"),
    )
    error = gateway_error(
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, status.message, status), "submit", SubmitError, "77"
    )
    assert isinstance(error, SubmitError) and error.tx_id == "77" and not error.refused
    assert str(error) == "submit failed with UNAVAILABLE: orderer unreachable (OrdererMSP at orderer0:7050: EOF)"
    assert error_details(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "x")) == ()


def test_connect_says_everything_that_is_missing():
    with pytest.raises(TypeError) as missing:
        connect()
    assert "an identity" in str(missing.value)
    assert "signer=" in str(missing.value)
    assert "channel=" in str(missing.value)
    identity, signer, _ = member()
    with pytest.raises(TypeError, match=r"channel= a grpc.Channel, not str"):
        connect(identity, signer=signer, channel="localhost:7051")
    with pytest.raises(TypeError, match="endorse_timeout > 0"):
        connect(identity, signer=signer, channel=grpc.insecure_channel("localhost:9"), endorse_timeout=0)


def test_grpc_channels_are_shared_per_peer_and_certificate(tmp_path):
    _, _, cert = member()
    _, _, other_cert = member()
    (tmp_path / "ca.crt").write_bytes(cert)
    channel = grpc_channel_for("localhost:7051", cert, "peer0.tso.grid.local")
    assert grpc_channel_for("localhost:7051", tmp_path / "ca.crt", "peer0.tso.grid.local") is channel
    assert grpc_channel_for("localhost:7051", other_cert, "peer0.tso.grid.local") is not channel
    assert grpc_channel_for("localhost:7061", cert, "peer0.tso.grid.local") is not channel


class FakeGateway(gateway_pb2_grpc.GatewayServicer):
    """An in-process Fabric Gateway that checks signatures as the peer does and records what it was sent.

    Chaincode behaviour by function name: "Fail" refuses with a 500, "Conflict" endorses but commits with
    MVCC_READ_CONFLICT, "Slow" takes longer than any test's deadline; anything else returns b"did <args>".
    """

    def __init__(self):
        self.requests = []
        self.validation = {}
        self.events_cancelled = threading.Event()
        self.unavailable = set()  # names of calls to fail as if the orderer or the ledger were out of reach

    def _proposal(self, signed, context):
        parsed = parse_proposal(signed)
        verify_signed_by(parsed["signature_header"].creator, signed.signature, signed.proposal_bytes)
        function = parsed["spec"].input.args[0]
        if function == b"Slow":
            time.sleep(1)
        if function == b"Fail":
            status = endorse_refusal(
                "failed to endorse transaction, see attached details",
                "peer0:7051",
                "TSOMSP",
                "chaincode response 500, failed to declare: consumer c9 is not yours",
            )
            context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
            context.abort(grpc.StatusCode.ABORTED, status.message)
        return parsed, b"did " + b" ".join(parsed["spec"].input.args)

    def Evaluate(self, request, context):
        self.requests.append(request)
        _, result = self._proposal(request.proposed_transaction, context)
        return gateway_pb2.EvaluateResponse(result=proposal_response_pb2.Response(status=200, payload=result))

    def Endorse(self, request, context):
        self.requests.append(request)
        parsed, result = self._proposal(request.proposed_transaction, context)
        if parsed["spec"].input.args[0] == b"Conflict":
            self.validation[request.transaction_id] = transaction_pb2.MVCC_READ_CONFLICT
        return gateway_pb2.EndorseResponse(prepared_transaction=prepared_transaction(parsed["proposal"].header, result))

    def Submit(self, request, context):
        self.requests.append(request)
        if "Submit" in self.unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "ordering service unreachable")
        envelope = request.prepared_transaction
        header = common_pb2.Payload.FromString(envelope.payload).header
        creator = common_pb2.SignatureHeader.FromString(header.signature_header).creator
        verify_signed_by(creator, envelope.signature, envelope.payload)
        return gateway_pb2.SubmitResponse()

    def CommitStatus(self, signed, context):
        self.requests.append(signed)
        if "CommitStatus" in self.unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "ledger unreachable")
        request = gateway_pb2.CommitStatusRequest.FromString(signed.request)
        verify_signed_by(request.identity, signed.signature, signed.request)
        return gateway_pb2.CommitStatusResponse(
            result=self.validation.get(request.transaction_id, transaction_pb2.VALID), block_number=7
        )

    def ChaincodeEvents(self, signed, context):
        self.requests.append(signed)
        request = gateway_pb2.ChaincodeEventsRequest.FromString(signed.request)
        verify_signed_by(request.identity, signed.signature, signed.request)
        context.add_callback(self.events_cancelled.set)
        for block in (5, 6):
            yield gateway_pb2.ChaincodeEventsResponse(
                block_number=block,
                events=[
                    chaincode_event_pb2.ChaincodeEvent(
                        chaincode_id=request.chaincode_id,
                        tx_id=f"tx{block}{i}",
                        event_name="ReadingPosted",
                        payload=f"{block}/{i}".encode(),
                    )
                    for i in range(2)
                ],
            )
        self.events_cancelled.wait(10)  # an open stream: nothing more until the client goes away


@pytest.fixture
def fake_gateway():
    servicer = FakeGateway()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    gateway_pb2_grpc.add_GatewayServicer_to_server(servicer, server)
    port = server.add_insecure_port("localhost:0")
    server.start()
    channel = grpc.insecure_channel(f"localhost:{port}")
    identity, signer, _ = member()
    yield connect(identity, signer=signer, channel=channel), servicer
    channel.close()
    server.stop(grace=None)


def test_submit_endorses_submits_and_waits_for_a_valid_commit(fake_gateway):
    gateway, servicer = fake_gateway
    contract = gateway.get_network("grid").get_contract("gridledger", "dr")
    assert (
        contract.submit("Declare", "c1", transient={"kwh": b"3"}, endorsing_organizations=["TSOMSP"])
        == b"did dr:Declare c1"
    )
    endorse, submit, commit_status = servicer.requests
    assert endorse.channel_id == submit.channel_id == "grid"
    assert list(endorse.endorsing_organizations) == ["TSOMSP"]
    assert (
        endorse.transaction_id
        == submit.transaction_id
        == parse_proposal(endorse.proposed_transaction)["channel_header"].tx_id
    )
    status_request = gateway_pb2.CommitStatusRequest.FromString(commit_status.request)
    assert (status_request.transaction_id, status_request.channel_id) == (endorse.transaction_id, "grid")
    assert status_request.identity == gateway.identity.serialize()


def test_detailed_submit_reports_result_block_and_status(fake_gateway):
    gateway, _ = fake_gateway
    transaction = gateway.get_network("grid").get_contract("gridledger").new_proposal("Settle", "cmd-1").endorse()
    assert transaction.result == b"did Settle cmd-1"
    submitted = transaction.submit()
    status = submitted.status()
    assert (status.transaction_id, status.code, status.block_number, status.successful) == (
        transaction.transaction_id,
        "VALID",
        7,
        True,
    )


def test_a_transaction_that_fails_validation_raises_commit_error_with_the_code(fake_gateway):
    gateway, _ = fake_gateway
    with pytest.raises(CommitError) as failed:
        gateway.get_network("grid").get_contract("gridledger").submit("Conflict")
    assert failed.value.code == "MVCC_READ_CONFLICT"
    assert str(failed.value) == f"transaction {failed.value.tx_id} failed to commit with status MVCC_READ_CONFLICT"


def test_a_chaincode_refusal_over_grpc_is_an_endorse_error_with_the_contracts_message(fake_gateway):
    gateway, servicer = fake_gateway
    with pytest.raises(EndorseError) as refused:
        gateway.get_network("grid").get_contract("gridledger").submit("Fail")
    assert str(refused.value) == "failed to declare: consumer c9 is not yours"
    assert refused.value.tx_id == servicer.requests[0].transaction_id
    assert refused.value.details[0][:2] == ("peer0:7051", "TSOMSP")


def test_evaluate_returns_the_result_and_targets_the_named_organisations(fake_gateway):
    gateway, servicer = fake_gateway
    contract = gateway.get_network("grid").get_contract("gridledger")
    assert contract.evaluate("GetAggregate", "cmd-1", endorsing_organizations=["AC1MSP"]) == b"did GetAggregate cmd-1"
    assert list(servicer.requests[0].target_organizations) == ["AC1MSP"]
    with pytest.raises(GatewayError, match=r"^failed to declare: consumer c9 is not yours$"):
        contract.evaluate("Fail")


def test_each_call_has_a_deadline(fake_gateway):
    gateway, _ = fake_gateway
    proposal = gateway.get_network("grid").get_contract("gridledger").new_proposal("Slow")
    with pytest.raises(EndorseError, match="endorse failed with DEADLINE_EXCEEDED") as late:
        proposal.endorse(timeout=0.2)
    assert late.value.tx_id == proposal.transaction_id


def test_chaincode_events_stream_from_a_checkpoint_until_closed(fake_gateway):
    gateway, servicer = fake_gateway
    network = gateway.get_network("grid")
    with network.get_chaincode_events("gridledger", start_block=5, after_transaction_id="tx40") as events:
        received = [next(events) for _ in range(4)]
    assert [(e.block_number, e.transaction_id, e.payload) for e in received] == [
        (5, "tx50", b"5/0"),
        (5, "tx51", b"5/1"),
        (6, "tx60", b"6/0"),
        (6, "tx61", b"6/1"),
    ]
    assert {(e.chaincode_name, e.event_name) for e in received} == {("gridledger", "ReadingPosted")}
    assert list(events) == []
    assert servicer.events_cancelled.wait(5)
    request = gateway_pb2.ChaincodeEventsRequest.FromString(servicer.requests[0].request)
    assert (request.channel_id, request.chaincode_id, request.after_transaction_id) == ("grid", "gridledger", "tx40")
    assert request.start_position.specified.number == 5


def test_closing_the_gateway_ends_its_event_streams(fake_gateway):
    gateway, servicer = fake_gateway
    events = gateway.get_network("grid").get_chaincode_events("gridledger")
    assert next(events).block_number == 5
    gateway.close()
    assert servicer.events_cancelled.wait(5)
    request = gateway_pb2.ChaincodeEventsRequest.FromString(servicer.requests[0].request)
    assert request.start_position.HasField("next_commit")
    assert list(events) == []


def test_submit_and_commit_status_failures_carry_the_transaction_id(fake_gateway):
    gateway, servicer = fake_gateway
    transaction = gateway.get_network("grid").get_contract("gridledger").new_proposal("Settle").endorse()
    servicer.unavailable = {"Submit"}
    with pytest.raises(SubmitError, match=r"^submit failed with UNAVAILABLE: ordering service unreachable$") as lost:
        transaction.submit()
    assert lost.value.tx_id == transaction.transaction_id
    servicer.unavailable = {"CommitStatus"}
    submitted = transaction.submit()
    with pytest.raises(CommitStatusError, match="commit status failed with UNAVAILABLE") as unknown:
        submitted.status()
    assert unknown.value.tx_id == transaction.transaction_id
