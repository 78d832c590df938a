"""Smart-meter identities on the real network for the security suites: a meter's own session (its certificate is
the meter operator's, so it signs as a member of the operator's MSP), and "meter" certificates a dishonest RA
issues itself from its own CA."""

import json

from clients.dr import Meter, Reading
from clients.session import Session
from gateway.identity import X509Identity
from gateway.signing import Signer
from network import crypto


def _gateway_through(network, org: str, identity, signer):
    from gateway import connect, grpc_channel_for  # need Fabric's generated protobufs

    peer = network.topology.peer_of(org)
    channel = grpc_channel_for(peer.address, network.layout.node_dir(peer) / "tls" / "ca.crt")
    return connect(identity, signer=signer, channel=channel)


def meter_session(network, consumer: str) -> Session:
    """The session of `consumer`'s meter through its RA's peer, signing as a member of the meter operator's MSP
    (what network.identities.connect_as does for "meter:<consumer>" with the proposed one-line change)."""
    from gateway import identity_from_msp_dir

    topology = network.topology
    identity, signer = identity_from_msp_dir(network.layout.meter_dir(consumer) / "msp", topology.meter_operator_msp_id)
    owner = topology.consumer_owner(consumer).name
    return Session(_gateway_through(network, owner, identity, signer), topology, owner, f"meter:{consumer}")


def ra_issued_meter(network, ra: str, consumer: str) -> Meter:
    """A "meter" for `consumer` whose certificate RA `ra` issued from its own CA, as the seed's crypto did."""
    cert, key = crypto.issue_certificate(
        network.layout.org_dir(ra) / "ca",
        f"meter-{consumer}@{network.layout.org_dir(ra).name}",
        organisational_unit="client",
        attributes={"role": "meter", "consumer": consumer},
    )
    return Meter(consumer, cert, Signer(key))


def ra_issued_session(network, ra: str, consumer: str) -> Session:
    """A session as ra_issued_meter's certificate: Fabric accepts it as a client of `ra`'s MSP (its CA issued
    it); only the contracts can tell it is no meter."""
    meter = ra_issued_meter(network, ra, consumer)
    identity = X509Identity(network.topology.organisation(ra).msp_id, meter.certificate)
    return Session(_gateway_through(network, ra, identity, meter.signer), network.topology, ra, f"forged:{consumer}")


def relayed(readings: list[Reading], signatures: dict) -> dict[str, str]:
    """The transient data of a relayed batch carrying `signatures` ({consumer: {"certificate", "signature"}})."""
    return {"readings": json.dumps([r.as_json() for r in readings]), "meter_signatures": json.dumps(signatures)}
