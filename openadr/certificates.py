"""The TLS material of OpenADR: the VTN's server certificate from its organisation's TLS CA, a VEN's client
certificate from its RA's TLS CA, and the bundle of CAs a VTN accepts VENs from. Each is issued by the
organisation that owns the CA (custody: the TSO never holds an RA's key, nor an RA the TSO's).

    openadr/<ORG>/vtn.crt, vtn.key, ven-cas.pem     the VTN's, in <run>/openadr/
    openadr/ven/<RA>/ven.crt, ven.key, vtn-ca.pem   an RA's VEN's (vtn-ca.pem: the TLS CAs of the commanders)
"""

from pathlib import Path

from cryptography import x509

from consortium.topology import Topology
from network.crypto import CryptoLayout, issue_certificate
from openadr.mapping import served_ras


def vtn_dir(run_dir: Path, org: str) -> Path:
    return Path(run_dir) / "openadr" / org


def ven_dir(run_dir: Path, ra: str) -> Path:
    return Path(run_dir) / "openadr" / "ven" / ra


def tls_ca_subject(layout: CryptoLayout, org: str) -> x509.Name:
    return x509.load_pem_x509_certificate(layout.tls_ca_cert(org).read_bytes()).subject


def ensure_vtn_material(layout: CryptoLayout, topology: Topology, run_dir: Path, org: str) -> Path:
    """The VTN's server pair (for the topology's host) from `org`'s TLS CA and the bundle of its served RAs' TLS
    CAs, issued once; returns the directory."""
    folder = vtn_dir(run_dir, org)
    if not (folder / "vtn.crt").exists():
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = issue_certificate(
            layout.org_dir(org) / "tlsca",
            f"vtn.{topology.organisation(org).domain}",
            sans=(topology.host, "localhost"),
            tls=True,
        )
        _write_pair(folder, "vtn", cert, key)
    bundle = b"".join(layout.tls_ca_cert(ra.name).read_bytes() for ra in served_ras(topology, org))
    (folder / "ven-cas.pem").write_bytes(bundle)
    return folder


def issue_ven_certificate(layout: CryptoLayout, topology: Topology, run_dir: Path, ra: str, name: str = "ven") -> Path:
    """A client certificate for `ra`'s VEN from the RA's own TLS CA (the RA's process issues it), and the TLS CAs
    of the organisations that command it, so the VEN can check the VTN; returns the directory."""
    org = topology.organisation(ra)
    if org.role != "ra":
        raise ValueError(f"{ra} is not an RA: only an RA's VEN registers with a VTN")
    folder = ven_dir(run_dir, ra)
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = issue_certificate(layout.org_dir(ra) / "tlsca", f"{name}.{org.domain}", tls=True)
    _write_pair(folder, "ven", cert, key)
    commanders = [o.name for o in topology.organisations if o.role == "tso" or o.name == org.parent]
    (folder / "vtn-ca.pem").write_bytes(b"".join(layout.tls_ca_cert(c).read_bytes() for c in commanders))
    return folder


def _write_pair(folder: Path, stem: str, cert: bytes, key: bytes) -> None:
    (folder / f"{stem}.crt").write_bytes(cert)
    key_file = folder / f"{stem}.key"
    key_file.touch(mode=0o600)
    key_file.write_bytes(key)
