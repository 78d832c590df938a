"""The channel's identities and policies as its config block records them, and Fabric's evaluation of a signature set
against a policy: who signed (a certificate issued by an organisation's CA, with its node OU), whether the signature
is good (ECDSA P-256 over SHA-256, low S, as Fabric's bccsp), and whether the signers satisfy a policy.

After Fabric's msp (identity validation), common/cauthdsl (signature policies: each identity satisfies at most one
principal, n-out-of evaluated greedily in rule order) and common/policies/implicitmeta (ANY, ALL or MAJORITY of the
sub-policies of that name in the child groups). Certificate expiry is not checked, as Fabric's MSP does not check it
for signatures on blocks already committed.

    channel = ChannelConfig.parse(config_bytes)              # a CONFIG transaction's common.Config
    channel.satisfies("/Channel/Orderer/BlockValidation", block.signatures)   # [] or the reasons it is not met
    channel.satisfies(SignaturePolicy(2, ("RA1MSP", "AC1MSP")), tx.endorsements)
"""

import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from fabric_protos.common import configtx_pb2, policies_pb2
from fabric_protos.msp import identities_pb2, msp_config_pb2, msp_principal_pb2
from google.protobuf.message import DecodeError

from consortium.policies import SignaturePolicy
from gateway.blocks import SignedData
from gateway.signing import P256_ORDER

ROLES = {
    msp_principal_pb2.MSPRole.MEMBER: "member",
    msp_principal_pb2.MSPRole.ADMIN: "admin",
    msp_principal_pb2.MSPRole.CLIENT: "client",
    msp_principal_pb2.MSPRole.PEER: "peer",
    msp_principal_pb2.MSPRole.ORDERER: "orderer",
}


class PolicyUnknown(KeyError):
    """The config holds no policy at that path, or one of a kind this module cannot evaluate."""


@dataclass(frozen=True)
class Principal:
    msp_id: str
    role: str  # member, admin, client, peer, orderer


@dataclass
class Msp:
    """An organisation's MSP from the channel config: its CAs and how node OUs name roles."""

    msp_id: str
    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate]
    node_ous: dict[str, str]  # role → organizational unit, when node OUs are enabled
    admins: list[bytes] = field(default_factory=list)  # DER of the explicitly listed admin certificates
    revoked: set[int] = field(default_factory=set)  # serial numbers in the CAs' revocation lists

    @classmethod
    def parse(cls, config: msp_config_pb2.MSPConfig) -> "Msp":
        fabric = msp_config_pb2.FabricMSPConfig.FromString(config.config)
        ous = fabric.fabric_node_ous
        node_ous = {}
        if ous.enable:
            for role, identifier in (
                ("client", ous.client_ou_identifier),
                ("peer", ous.peer_ou_identifier),
                ("admin", ous.admin_ou_identifier),
                ("orderer", ous.orderer_ou_identifier),
            ):
                if identifier.organizational_unit_identifier:
                    node_ous[role] = identifier.organizational_unit_identifier
        revoked = set()
        for crl in fabric.revocation_list:
            revoked |= {entry.serial_number for entry in x509.load_pem_x509_crl(crl)}
        return cls(
            fabric.name,
            [x509.load_pem_x509_certificate(c) for c in fabric.root_certs],
            [x509.load_pem_x509_certificate(c) for c in fabric.intermediate_certs],
            node_ous,
            [x509.load_pem_x509_certificate(c).public_bytes(Encoding.DER) for c in fabric.admins],
            revoked,
        )

    def problem_with(self, certificate: x509.Certificate) -> str | None:
        """Why `certificate` is not an identity of this MSP (None when it is): issued by one of its CAs (directly or
        through one of its intermediates) and not revoked."""
        if certificate.serial_number in self.revoked:
            return f"certificate {certificate.serial_number:x} is revoked by {self.msp_id}"
        issuers = self.roots + self.intermediates
        for issuer in issuers:
            if _issued_by(certificate, issuer) and (
                issuer in self.roots or any(_issued_by(issuer, root) for root in self.roots)
            ):
                return None
        return f"certificate of {_subject(certificate)} is not issued by a CA of {self.msp_id}"

    def has_role(self, certificate: x509.Certificate, role: str) -> bool:
        if role == "member":
            return True
        if role == "admin" and certificate.public_bytes(Encoding.DER) in self.admins:
            return True
        unit = self.node_ous.get(role)
        units = [a.value for a in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
        return unit is not None and unit in units


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def _subject(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def signature_problem(signed: SignedData) -> str | None:
    """Why `signed.signature` is not a good signature of `signed.data` by its identity's certificate (None when
    it is): ECDSA over SHA-256 with S in the lower half of the curve order, as Fabric requires."""
    try:
        identity = identities_pb2.SerializedIdentity.FromString(signed.identity)
        certificate = x509.load_pem_x509_certificate(identity.id_bytes)
    except (DecodeError, ValueError):
        return "the signer's identity is not a certificate"
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return f"the certificate of {_subject(certificate)} holds no ECDSA key"
    try:
        _, s = decode_dss_signature(signed.signature)
        key.verify(signed.signature, signed.data, ec.ECDSA(hashes.SHA256()))
    except (ValueError, InvalidSignature):
        return f"the signature of {identity.mspid} {_subject(certificate)} does not verify"
    if isinstance(key.curve, ec.SECP256R1) and s > P256_ORDER // 2:
        return f"the signature of {identity.mspid} {_subject(certificate)} has a high S, which Fabric refuses"
    return None


@dataclass(frozen=True)
class Signer:
    msp_id: str
    certificate: x509.Certificate


class ChannelConfig:
    """The channel's config tree (common.Config): its MSPs, and its policies by path ("/Channel/Application/Writers")."""

    def __init__(self, config: configtx_pb2.Config):
        self.root = config.channel_group
        self.msps: dict[str, Msp] = {}
        self._groups: dict[str, str] = {}  # MSP id → the name of its organisation's group
        self._collect_msps(self.root)

    @classmethod
    def parse(cls, config: bytes) -> "ChannelConfig":
        return cls(configtx_pb2.Config.FromString(config))

    def _collect_msps(self, group: configtx_pb2.ConfigGroup, name: str = "Channel") -> None:
        if "MSP" in group.values:
            msp = Msp.parse(msp_config_pb2.MSPConfig.FromString(group.values["MSP"].value))
            self.msps[msp.msp_id] = msp
            self._groups[msp.msp_id] = name
        for child_name, child in group.groups.items():
            self._collect_msps(child, child_name)

    def org_group(self, msp_id: str) -> str | None:
        """The name of the config group of the organisation whose MSP is `msp_id`."""
        return self._groups.get(msp_id)

    def signers(self, signatures: tuple[SignedData, ...] | list[SignedData]) -> tuple[list[Signer], list[str]]:
        """The distinct identities whose signature is good and who belong to a channel MSP, and what was wrong with
        the others (Fabric drops those and evaluates the policy with the rest)."""
        signers, problems, seen = [], [], set()
        for signed in signatures:
            if signed.identity in seen:
                continue
            seen.add(signed.identity)
            problem = signature_problem(signed)
            if problem is None:
                identity = identities_pb2.SerializedIdentity.FromString(signed.identity)
                certificate = x509.load_pem_x509_certificate(identity.id_bytes)
                msp = self.msps.get(identity.mspid)
                problem = (
                    f"{identity.mspid} is not an organisation of the channel"
                    if msp is None
                    else msp.problem_with(certificate)
                )
                if problem is None:
                    signers.append(Signer(identity.mspid, certificate))
                    continue
            problems.append(problem)
        return signers, problems

    def satisfies(self, policy: "str | SignaturePolicy", signatures) -> list[str]:
        """[] when the good signatures in `signatures` satisfy `policy` (a config path, or a signature policy whose
        rules name organisations' peers), else what is wrong: the bad signatures and the policy not met."""
        signers, problems = self.signers(signatures)
        if isinstance(policy, SignaturePolicy):
            met = _evaluate(_peer_rule(policy), signers, [False] * len(signers), self)
            shown = str(policy)
        else:
            met = self._evaluate_path(policy, signers)
            shown = policy
        if met:
            return []
        who = ", ".join(f"{s.msp_id} {_subject(s.certificate)}" for s in signers) or "nobody"
        return [*problems, f"the policy {shown} is not met by the good signatures of {who}"]

    def _evaluate_path(self, path: str, signers: list[Signer]) -> bool:
        parts = path.strip("/").split("/")
        if not parts or parts[0] != "Channel":
            raise PolicyUnknown(path)
        group = self.root
        for name in parts[1:-1]:
            if name not in group.groups:
                raise PolicyUnknown(path)
            group = group.groups[name]
        return self._evaluate_in(group, parts[-1], signers, path)

    def _evaluate_in(self, group: configtx_pb2.ConfigGroup, name: str, signers: list[Signer], path: str) -> bool:
        if name not in group.policies:
            raise PolicyUnknown(path)
        policy = group.policies[name].policy
        if policy.type not in (policies_pb2.Policy.SIGNATURE, policies_pb2.Policy.IMPLICIT_META):
            raise PolicyUnknown(f"{path} (policy type {policy.type})")
        try:
            if policy.type == policies_pb2.Policy.SIGNATURE:
                rule = _envelope_rule(policies_pb2.SignaturePolicyEnvelope.FromString(policy.value))
            else:
                meta = policies_pb2.ImplicitMetaPolicy.FromString(policy.value)
        except PolicyUnknown:
            raise
        except (DecodeError, IndexError, KeyError) as error:
            raise PolicyUnknown(f"{path} (unreadable: {type(error).__name__})") from error
        if policy.type == policies_pb2.Policy.SIGNATURE:
            return _evaluate(rule, signers, [False] * len(signers), self)
        results = [
            self._evaluate_in(child, meta.sub_policy, signers, f"{path}/{child_name}")
            for child_name, child in sorted(group.groups.items())
        ]
        if meta.rule == policies_pb2.ImplicitMetaPolicy.ANY:
            return any(results)
        if meta.rule == policies_pb2.ImplicitMetaPolicy.ALL:
            return all(results)
        return sum(results) > len(results) // 2


# A rule: a principal, or (n, [rules]).
Rule = Principal | tuple[int, list["Rule"]]


def _peer_rule(policy: SignaturePolicy) -> Rule:
    return (
        policy.n,
        [Principal(rule, "peer") if isinstance(rule, str) else _peer_rule(rule) for rule in policy.rules],
    )


def _envelope_rule(envelope: policies_pb2.SignaturePolicyEnvelope) -> Rule:
    principals = []
    for identity in envelope.identities:
        if identity.principal_classification != msp_principal_pb2.MSPPrincipal.ROLE:
            raise PolicyUnknown(f"principal classification {identity.principal_classification}")
        role = msp_principal_pb2.MSPRole.FromString(identity.principal)
        principals.append(Principal(role.msp_identifier, ROLES[role.role]))

    def convert(rule: policies_pb2.SignaturePolicy) -> Rule:
        if rule.WhichOneof("Type") == "signed_by":
            return principals[rule.signed_by]
        return (rule.n_out_of.n, [convert(r) for r in rule.n_out_of.rules])

    return convert(envelope.rule)


def _evaluate(rule: Rule, signers: list[Signer], used: list[bool], channel: ChannelConfig) -> bool:
    """cauthdsl: a principal takes the first unused signer that satisfies it; n-out-of tries each rule on a copy of
    the used flags and keeps them when the rule is met."""
    if isinstance(rule, Principal):
        msp = channel.msps.get(rule.msp_id)
        for index, signer in enumerate(signers):
            if not used[index] and signer.msp_id == rule.msp_id and msp and msp.has_role(signer.certificate, rule.role):
                used[index] = True
                return True
        return False
    n, rules = rule
    verified = 0
    for sub in rules:
        attempt = list(used)
        if _evaluate(sub, signers, attempt, channel):
            verified += 1
            used[:] = attempt
    return verified >= n


_TOKEN = re.compile(r"\s*(AND|OR|OutOf|\(|\)|,|'[^']*'|\d+)")


def parse_policy(text: str) -> SignaturePolicy:
    """Fabric's policy language (AND, OR, OutOf over 'MSP.peer' principals), as policies.endorsement_policy writes
    it, into a SignaturePolicy whose rules name the organisations."""
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"cannot read the policy {text!r} at {text[position:]!r}")
        tokens.append(match.group(1))
        position = match.end()

    def expression(at: int) -> tuple["str | SignaturePolicy", int]:
        token = tokens[at]
        if token.startswith("'"):
            msp_id, _, role = token.strip("'").rpartition(".")
            if role != "peer":
                raise ValueError(f"only peer principals are endorsement principals here, got {token}")
            return msp_id, at + 1
        if tokens[at + 1] != "(":
            raise ValueError(f"expected ( after {token} in {text!r}")
        at += 2
        n = None
        if token == "OutOf":
            n, at = int(tokens[at]), at + 2
        rules = []
        while tokens[at] != ")":
            rule, at = expression(at)
            rules.append(rule)
            if tokens[at] == ",":
                at += 1
        count = {"AND": len(rules), "OR": 1}.get(token, n)
        if count is None:
            raise ValueError(f"unknown operator {token}")
        return SignaturePolicy(count, tuple(rules)), at + 1

    try:
        policy, end = expression(0)
    except IndexError:
        raise ValueError(f"the policy {text!r} ends too soon") from None
    if end != len(tokens) or isinstance(policy, str):
        raise ValueError(f"cannot read the policy {text!r}")
    return policy
