"""The consortium's topology, read from topology.yaml: organisations, nodes, their ports and the visibility groups."""

import dataclasses
import os
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path

import yaml

DEFAULT_PATH = Path(__file__).resolve().parent / "topology.yaml"
PORT_STRIDE = 10
DEFAULT_TIME_TOLERANCE_SECONDS = 30
# The orderers' consensus: Raft (etcdraft, the default) or SmartBFT ("BFT", Fabric v3's name for it).
CONSENSUS_TYPES = ("etcdraft", "BFT")
# A DR command's readings are due this long after its window ends, unless the command says (at most a week later).
DEFAULT_DR_READINGS_DUE_MINUTES = 30
MAX_DR_READINGS_DUE_MINUTES = 7 * 1440


class TopologyError(ValueError):
    """topology.yaml says something that cannot be a network."""


@dataclass(frozen=True)
class Organisation:
    name: str
    role: str  # tso | ac | ra
    title: str
    domain: str
    parent: str | None = None
    consumers: tuple[str, ...] = ()

    @property
    def msp_id(self) -> str:
        return f"{self.name}MSP"


@dataclass(frozen=True)
class MarketRules:
    """The market's defaults until its operator configures otherwise, and who may propose matchings."""

    operator: str
    matchers: tuple[str, ...]
    gate_seconds: int
    proposal_seconds: int
    objective: str


@dataclass(frozen=True)
class SettlementDefaults:
    """What a DR command's product leaves out (topology.yaml `settlement:`; chaincode.contracts.dr_units uses them).
    Powers in W, energy in Wh, money in sen, times in minutes."""

    price_sen_per_kw: int = 100  # ΔkW price per kW per 30-minute unit
    penalty_sen_per_kwh: int = 0  # kWh-type DR shortfall charge
    balancing_baseline: str = "measured"  # measured (直前計測型) | forecast (事前予測型)
    measure_minutes: int = 5  # 直前計測型: minutes measured before the window
    gate_closure_minutes: int = 60  # 事前予測型: a 基準値計画 is due this long before its first unit
    same_day_starts_before_minutes: int = 240  # 当日調整 window and cap
    same_day_ends_before_minutes: int = 60
    same_day_cap_percent: int | None = 20
    tolerance_percent: int = 10  # Assessment II
    penalty_i: Fraction = Fraction(3, 2)
    penalty_ii: Fraction = Fraction(1)


def _port_at(offset: int, doc: str) -> property:
    """A node's port: its block of PORT_STRIDE ports starts at port_base + PORT_STRIDE x its index."""
    return property(lambda node: node.port_base + PORT_STRIDE * node.index + offset, doc=doc)


@dataclass(frozen=True)
class Node:
    """One orderer or peer process and the ports it listens on."""

    name: str  # e.g. orderer0, peer0.tso
    kind: str  # orderer | peer
    org: str  # organisation name (the orderer organisation's for orderers)
    hostname: str  # its TLS certificate's host name, e.g. peer0.tso.grid.local
    host: str
    index: int
    port_base: int

    listen_port = _port_at(0, "gRPC: clients, other nodes, Raft.")
    admin_port = _port_at(1, "Orderers: the channel participation (osnadmin) API.")
    chaincode_port = _port_at(
        1, "Peers: where the peer listens for chaincode; unused with chaincode as a service, but bound."
    )
    operations_port = _port_at(2, "/healthz and metrics.")
    chaincode_server_port = _port_at(3, "Peers: where this organisation's chaincode-as-a-service process listens.")
    profile_port = _port_at(4, "Peers: Go's pprof endpoint, served only when GRIDLEDGER_PEER_PROFILE=1.")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.listen_port}"

    def ports(self) -> dict[str, int]:
        if self.kind == "orderer":
            return {"listen": self.listen_port, "admin": self.admin_port, "operations": self.operations_port}
        return {
            "listen": self.listen_port,
            "chaincode": self.chaincode_port,
            "operations": self.operations_port,
            "chaincode server": self.chaincode_server_port,
        }


@dataclass(frozen=True)
class Topology:
    channel: str
    domain: str
    host: str
    port_base: int
    orderer_org: str
    orderer_msp_id: str
    orderer_names: tuple[str, ...]
    organisations: tuple[Organisation, ...] = field(default_factory=tuple)
    market: MarketRules | None = None
    meter_operator: str = ""  # the organisation whose CA issues every smart meter's identity (the TSO)
    time_tolerance_seconds: int = DEFAULT_TIME_TOLERANCE_SECONDS  # how far a transaction's time may be off
    consensus: str = "etcdraft"  # the orderers' consensus type, one of CONSENSUS_TYPES
    dr_readings_due_minutes: int = DEFAULT_DR_READINGS_DUE_MINUTES  # after a DR window, unless its command says
    settlement: SettlementDefaults = SettlementDefaults()  # what a DR command's product leaves out

    @property
    def orderer_domain(self) -> str:
        return f"{self.orderer_org.lower()}.{self.domain}"

    @cached_property
    def orderers(self) -> tuple[Node, ...]:
        return tuple(
            Node(name, "orderer", self.orderer_org, f"{name}.{self.orderer_domain}", self.host, i, self.port_base)
            for i, name in enumerate(self.orderer_names)
        )

    @cached_property
    def peers(self) -> tuple[Node, ...]:
        first = len(self.orderer_names)
        return tuple(
            Node(
                f"peer0.{org.name.lower()}",
                "peer",
                org.name,
                f"peer0.{org.domain}",
                self.host,
                first + i,
                self.port_base,
            )
            for i, org in enumerate(self.organisations)
        )

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.orderers + self.peers

    def organisation(self, name: str) -> Organisation:
        for org in self.organisations:
            if org.name == name:
                return org
        raise KeyError(f"no organisation {name!r} in the topology (have {', '.join(self.org_names)})")

    @property
    def org_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.organisations)

    def peer_of(self, org: str) -> Node:
        for peer in self.peers:
            if peer.org == org:
                return peer
        raise KeyError(f"no peer for organisation {org!r}")

    def with_port_base(self, port_base: int) -> "Topology":
        return dataclasses.replace(self, port_base=port_base)

    # Visibility groups (mission A6): one private data collection per RA, one per AC, derived here only.

    def readings_collection_for(self, ra: str) -> str:
        return self.organisation(ra).name

    def ac_collection_for(self, ac: str) -> str:
        return self.organisation(ac).name

    def collections(self) -> dict[str, tuple[str, ...]]:
        """Collection name → member organisations: RAn = {TSO, its AC, RAn}; ACn = {TSO, ACn}."""
        tso = [o.name for o in self.organisations if o.role == "tso"]
        groups: dict[str, tuple[str, ...]] = {}
        for org in self.organisations:
            if org.role == "ac":
                groups[self.ac_collection_for(org.name)] = (*tso, org.name)
            elif org.role == "ra" and org.parent is not None:  # load() refuses an RA without its AC
                groups[self.readings_collection_for(org.name)] = (*tso, org.parent, org.name)
        return groups

    @property
    def meter_operator_msp_id(self) -> str:
        """The MSP of the meter operator: a smart meter's certificate counts only when this MSP issued it."""
        return self.organisation(self.meter_operator).msp_id

    def consumer_owner(self, consumer: str) -> Organisation:
        for org in self.organisations:
            if consumer in org.consumers:
                return org
        raise KeyError(f"unknown consumer {consumer!r}")


def load(path: Path | str | None = None, port_base: int | None = None, consensus: str | None = None) -> Topology:
    """Reads and checks the topology; the port base comes from the argument, GRIDLEDGER_PORT_BASE, or the file, and
    the orderers' consensus type likewise from the argument, GRIDLEDGER_ORDERER_CONSENSUS, or the file."""
    path = Path(path or os.environ.get("GRIDLEDGER_TOPOLOGY") or DEFAULT_PATH)
    raw = yaml.safe_load(path.read_text())
    try:
        domain = raw["domain"]
        orgs = tuple(
            Organisation(
                name=o["name"],
                role=o["role"],
                title=o.get("title", o["name"]),
                domain=f"{o['name'].lower()}.{domain}",
                parent=o.get("parent"),
                consumers=tuple(o.get("consumers", ())),
            )
            for o in raw["organisations"]
        )
        market = raw.get("market")
        rules = (
            None
            if market is None
            else MarketRules(
                operator=market["operator"],
                matchers=tuple(market["matchers"]),
                gate_seconds=int(market["gate_seconds"]),
                proposal_seconds=int(market["proposal_seconds"]),
                objective=market["objective"],
            )
        )
        tso = next((o["name"] for o in raw["organisations"] if o.get("role") == "tso"), "")
        meter_operator = (raw.get("meters") or {}).get("operator", tso)
        tolerance = int((raw.get("time") or {}).get("tolerance_seconds", DEFAULT_TIME_TOLERANCE_SECONDS))
        readings_due = int((raw.get("dr") or {}).get("readings_due_minutes", DEFAULT_DR_READINGS_DUE_MINUTES))
        base = port_base or int(os.environ.get("GRIDLEDGER_PORT_BASE") or raw["port_base"])
        consensus = (
            consensus or os.environ.get("GRIDLEDGER_ORDERER_CONSENSUS") or raw["orderers"].get("consensus", "etcdraft")
        )
        topology = Topology(
            channel=raw["channel"],
            domain=domain,
            host=raw.get("host", "127.0.0.1"),
            port_base=base,
            orderer_org=raw["orderers"]["name"],
            orderer_msp_id=raw["orderers"]["msp_id"],
            orderer_names=tuple(raw["orderers"]["nodes"]),
            organisations=orgs,
            market=rules,
            meter_operator=meter_operator,
            time_tolerance_seconds=tolerance,
            consensus=consensus,
            dr_readings_due_minutes=readings_due,
            settlement=settlement_defaults(raw.get("settlement")),
        )
    except (KeyError, TypeError, ValueError) as missing:
        raise TopologyError(f"{path}: missing or malformed entry {missing}") from None
    _check(topology, path)
    return topology


def settlement_defaults(section: dict | None) -> SettlementDefaults:
    """The `settlement:` section of topology.yaml (absent: the built-in defaults); ValueError for a bad value."""
    if not section:
        return SettlementDefaults()
    same_day = section.get("same_day") or {}
    assessment = section.get("assessment") or {}
    base = SettlementDefaults()
    cap = same_day.get("cap_percent", base.same_day_cap_percent)
    defaults = SettlementDefaults(
        price_sen_per_kw=int(section.get("price_sen_per_kw", base.price_sen_per_kw)),
        penalty_sen_per_kwh=int(section.get("penalty_sen_per_kwh", base.penalty_sen_per_kwh)),
        balancing_baseline=str(section.get("balancing_baseline", base.balancing_baseline)),
        measure_minutes=int(section.get("measure_minutes", base.measure_minutes)),
        gate_closure_minutes=int(section.get("gate_closure_minutes", base.gate_closure_minutes)),
        same_day_starts_before_minutes=int(same_day.get("starts_before_minutes", base.same_day_starts_before_minutes)),
        same_day_ends_before_minutes=int(same_day.get("ends_before_minutes", base.same_day_ends_before_minutes)),
        same_day_cap_percent=None if cap is None else int(cap),
        tolerance_percent=int(assessment.get("tolerance_percent", base.tolerance_percent)),
        penalty_i=Fraction(str(assessment.get("penalty_i", base.penalty_i))),
        penalty_ii=Fraction(str(assessment.get("penalty_ii", base.penalty_ii))),
    )
    if defaults.balancing_baseline not in ("measured", "forecast"):
        raise ValueError(
            f"settlement balancing_baseline must be measured or forecast, got {defaults.balancing_baseline}"
        )
    if min(defaults.price_sen_per_kw, defaults.penalty_sen_per_kwh, defaults.tolerance_percent) < 0:
        raise ValueError("settlement prices and tolerance must not be negative")
    if defaults.measure_minutes < 1 or defaults.gate_closure_minutes < 0:
        raise ValueError("settlement measure_minutes must be at least 1, gate_closure_minutes at least 0")
    if not 0 <= defaults.same_day_ends_before_minutes < defaults.same_day_starts_before_minutes:
        raise ValueError("settlement same_day must end before it starts (minutes before the event)")
    return defaults


def _check(topology: Topology, path: Path) -> None:
    names = topology.org_names
    if len(set(names)) != len(names):
        raise TopologyError(f"{path}: organisation names repeat: {names}")
    if topology.host not in ("127.0.0.1", "localhost", "::1"):
        raise TopologyError(f"{path}: host must be a loopback address, got {topology.host}")
    roles = [o.role for o in topology.organisations]
    if roles.count("tso") != 1:
        raise TopologyError(f"{path}: exactly one organisation must have role tso")
    for org in topology.organisations:
        if org.role not in ("tso", "ac", "ra"):
            raise TopologyError(f"{path}: {org.name}: role must be tso, ac or ra, got {org.role!r}")
        if org.role == "ra" and (org.parent not in names or topology.organisation(org.parent).role != "ac"):
            raise TopologyError(f"{path}: {org.name}: parent must name an ac organisation, got {org.parent!r}")
    consumers = [c for o in topology.organisations for c in o.consumers]
    if len(set(consumers)) != len(consumers):
        raise TopologyError(f"{path}: a consumer belongs to two RAs")
    if topology.meter_operator not in names:
        raise TopologyError(f"{path}: meters: operator must name an organisation, got {topology.meter_operator!r}")
    if topology.time_tolerance_seconds < 1:
        raise TopologyError(f"{path}: time: tolerance_seconds must be at least 1")
    if not 1 <= topology.dr_readings_due_minutes <= MAX_DR_READINGS_DUE_MINUTES:
        raise TopologyError(f"{path}: dr: readings_due_minutes must be from 1 to {MAX_DR_READINGS_DUE_MINUTES}")
    if topology.market is not None:
        rules = topology.market
        if rules.operator not in names:
            raise TopologyError(f"{path}: market operator {rules.operator!r} is not an organisation")
        unknown = [m for m in rules.matchers if m not in names]
        if unknown or not rules.matchers:
            raise TopologyError(f"{path}: market matchers must be organisations, got {list(rules.matchers)}")
        if rules.objective not in ("volume", "welfare", "maxmin"):
            raise TopologyError(f"{path}: market objective must be volume, welfare or maxmin")
        if rules.gate_seconds < 1 or rules.proposal_seconds < 1:
            raise TopologyError(f"{path}: market gate_seconds and proposal_seconds must be at least 1")
    if topology.consensus not in CONSENSUS_TYPES:
        raise TopologyError(
            f"{path}: orderers: consensus must be one of {', '.join(CONSENSUS_TYPES)}, got {topology.consensus!r}"
        )
    if len(topology.orderer_names) < 3:
        # Raft's quorum and SmartBFT's (ceil((n + f + 1) / 2), f = (n - 1) // 3) are both 2 of 3.
        raise TopologyError(f"{path}: the orderers need at least three nodes to survive one failure")
