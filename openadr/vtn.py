"""One commanding organisation's OpenADR 2.0b VTN in front of the ledger, on openleadr's OpenADRServer: it watches
the ledger's DR commands through the organisation's own DR client and sends each one as an event to the VENs of
the RAs it targets, holds every VEN's opt-in against its RA's declaration, and keeps the VENs' telemetry as the
RAs' own figures for the comparison.

    vtn = Vtn("run", "TSO")                 # the TSO's keys only (network.connections.Sessions(org="TSO"))
    await vtn.start(); ...; await vtn.stop()

Trust (see the openadr package's docstring): a VEN is its RA's DR system, so what it says is the RA's word.
- Registration: HTTPS with a client certificate from a served RA's TLS CA; the VEN must name that RA. One VEN
  certificate, one RA: a VEN naming another RA is refused, and every later message is checked against the
  certificate it registered with (openleadr's ven_lookup fingerprint check, and each report request's own VEN).
- Opt-in: the VTN holds only its organisation's keys, so it cannot sign a declaration for the RA. An opt-in is
  checked against the RA's declaration published on the ledger and recorded as confirmed or awaiting it.
- Telemetry: the RA's own figures, the aggregation system's side of the comparison (AS), never a meter reading:
  settlement uses only the readings on the ledger.
"""

import asyncio
import contextvars
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from cryptography import x509
from openleadr import OpenADRServer, enums
from openleadr.utils import certificate_fingerprint_from_der

from consortium.topology import Organisation
from network.connections import Sessions
from openadr import mapping, vtn_port
from openadr.certificates import ensure_vtn_material, tls_ca_subject
from openadr.store import VtnStore
from sim.aggregation_system import AggregationSystem

logger = logging.getLogger("gridledger.openadr")

# The TLS client certificate (DER) of the request being handled: openleadr hands its handlers the message only.
_peer_certificate: contextvars.ContextVar[bytes | None] = contextvars.ContextVar("peer_certificate", default=None)


@web.middleware
async def _remember_peer_certificate(request, handler):
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    token = _peer_certificate.set(ssl_object.getpeercert(binary_form=True) if ssl_object else None)
    try:
        return await handler(request)
    finally:
        _peer_certificate.reset(token)


def vtn_id_of(org: str) -> str:
    """The VTN's OpenADR id (upper case: openleadr's VEN flags a lower-case one as invalid)."""
    return f"GRIDLEDGER-{org.upper()}"


class Vtn:
    def __init__(
        self,
        run_dir: str | Path,
        org: str,
        host: str | None = None,
        port: int | None = None,
        poll_seconds: float = 2.0,
        report_seconds: int = 60,
    ):
        self.sessions = Sessions(run_dir, org=org)
        self.topology = self.sessions.topology
        self.org = org
        self.served = {ra.name: ra for ra in mapping.served_ras(self.topology, org)}
        self.dr = self.sessions(org).dr
        layout = self.sessions.network.layout
        self.material = ensure_vtn_material(layout, self.topology, Path(run_dir), org)
        self.issuers = {ra: tls_ca_subject(layout, ra) for ra in self.served}
        self.store = VtnStore(self.material / "vtn.sqlite")
        self.figures = AggregationSystem(self.sessions.as_db_path, self.topology)
        self.host = host or self.topology.host
        self.port = port or vtn_port(self.topology, org)
        self.poll_seconds = poll_seconds
        self.report_interval = timedelta(seconds=report_seconds)
        self._sent: set[tuple[str, str]] = set()  # (ven_id, command id) whose event is queued
        self._commands: list[dict] = []
        self._consumers: dict[str, set[str]] = {}
        self._watch: asyncio.Task | None = None
        self.server = OpenADRServer(
            vtn_id=vtn_id_of(org),
            cert=str(self.material / "vtn.crt"),
            key=str(self.material / "vtn.key"),
            http_host=self.host,
            http_port=self.port,
            http_cert=str(self.material / "vtn.crt"),
            http_key=str(self.material / "vtn.key"),
            http_ca_file=str(self.material / "ven-cas.pem"),
            ven_lookup=self.ven_lookup,
            requested_poll_freq=timedelta(seconds=poll_seconds),
            show_fingerprint=False,
        )
        self.server.app.middlewares.append(_remember_peer_certificate)
        self.server.add_handler("on_create_party_registration", self.on_create_party_registration)
        self.server.add_handler("on_cancel_party_registration", self.on_cancel_party_registration)
        self.server.add_handler("on_register_report", self.on_register_report)

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}{self.server.http_path_prefix}"

    async def start(self) -> None:
        await self.server.run()
        self._watch = asyncio.create_task(self._watch_ledger())

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        await self.server.stop()
        self.figures.close()
        self.store.close()
        self.sessions.close()

    # Registration.

    def ven_lookup(self, ven_id: str) -> dict | None:
        ven = self.store.ven(ven_id)
        return None if ven is None else {k: ven[k] for k in ("ven_id", "ven_name", "fingerprint", "registration_id")}

    async def on_create_party_registration(self, payload: dict):
        der = _peer_certificate.get()
        if der is None:  # openleadr's server runs plain HTTP only without TLS material, which we always give
            logger.warning("refused a registration without a client certificate")
            return False
        certificate = x509.load_der_x509_certificate(der)
        try:
            ra = mapping.registered_ra(
                payload.get("ven_name", ""), mapping.ra_of_certificate(certificate, self.issuers), list(self.served)
            )
        except mapping.RegistrationRefused as refusal:
            logger.warning("refused the registration of VEN %r: %s", payload.get("ven_name"), refusal)
            return False
        ven_id, registration_id = self.store.register(ra, payload["ven_name"], certificate_fingerprint_from_der(der))
        logger.info("registered %s's VEN as %s", ra, ven_id)
        await self._send_events(self._commands)
        return ven_id, registration_id

    async def on_cancel_party_registration(self, payload: dict):
        self.store.cancel(payload["ven_id"])
        return "oadrCanceledPartyRegistration", {"registration_id": payload.get("registration_id")}

    def _sender_is(self, ven_id: str) -> bool:
        """Whether the request being handled came with the certificate `ven_id` registered with."""
        der = _peer_certificate.get()
        ven = self.store.ven(ven_id)
        return der is not None and ven is not None and certificate_fingerprint_from_der(der) == ven["fingerprint"]

    # Commands → events, opt-ins → declarations.

    async def _watch_ledger(self) -> None:
        while True:
            try:
                self._commands = await asyncio.to_thread(self.dr.commands)
                await self._send_events(self._commands)
                await self._recheck_awaiting()
            except Exception as error:  # a peer down for a moment must not end the VTN
                logger.warning("could not read the ledger: %s", error)
            await asyncio.sleep(self.poll_seconds)

    async def _send_events(self, commands: list[dict]) -> None:
        now = datetime.now(UTC)
        for ven in self.store.vens():
            ra = self.served.get(ven["ra"])
            if ra is None:
                continue
            for command in commands:
                key = (ven["ven_id"], command["id"])
                if key in self._sent or not mapping.targets(command, ra) or not mapping.active(command, now):
                    continue
                self.server.add_raw_event(
                    ven["ven_id"], mapping.event_of_command(command, ven["ven_id"]), callback=self.on_opt
                )
                self._sent.add(key)
                logger.info("command %s sent to %s as event %s", command["id"], ven["ven_id"], command["id"])

    async def on_opt(self, ven_id: str, event_id: str, opt_type: str) -> None:
        command = mapping.command_of_event(event_id)
        ven = self.store.ven(ven_id)
        if command is None or ven is None:
            return
        declared = await asyncio.to_thread(self._declared, command, ven["ra"])
        status = mapping.opt_status(opt_type, declared)
        self.store.record_opt(command, ven_id, ven["ra"], opt_type, status)
        logger.info("%s (%s) answered command %s with %s: %s", ven_id, ven["ra"], command, opt_type, status)

    def _declared(self, command_id: str, ra: str) -> bool:
        return any(d["ra"] == ra for d in self.dr.evaluate("list_declarations", command_id))

    async def _recheck_awaiting(self) -> None:
        for opt in self.store.opts():
            if opt["status"] == "awaiting declaration" and await asyncio.to_thread(
                self._declared, opt["command"], opt["ra"]
            ):
                self.store.record_opt(
                    opt["command"], opt["ven_id"], opt["ra"], opt["opt_type"], mapping.opt_status("optIn", True)
                )

    # Telemetry → the RA's own figures.

    async def on_register_report(
        self, ven_id, resource_id, measurement, unit, scale, min_sampling_interval, max_sampling_interval
    ):
        """Requests a VEN's energy telemetry of each of its RA's consumers, every report interval; any other
        report (another measurement, a resource that is not the RA's consumer) is not requested."""
        ven = self.store.ven(ven_id)
        if ven is None or measurement != enums.MEASUREMENTS.ENERGY_REAL.description or unit != mapping.ENERGY_UNIT:
            logger.info("%s offered a %s report in %s of %r: not requested", ven_id, measurement, unit, resource_id)
            return None
        ra = self.served[ven["ra"]]
        if not await asyncio.to_thread(self._is_consumer_of, ra.name, resource_id):
            logger.warning(
                "%s offered telemetry of %r, not a consumer of %s: not requested", ven_id, resource_id, ra.name
            )
            return None
        interval = min(max(self.report_interval, min_sampling_interval), max_sampling_interval)

        async def receive(values):
            await self.receive_telemetry(ven_id, ra, resource_id, scale, values)

        return receive, interval, interval

    def _is_consumer_of(self, ra: str, consumer: str) -> bool:
        """Whether `consumer` is the topology's or registered as `ra`'s, as the ledger says (read again for a
        consumer not seen yet: RAs register new ones)."""
        if consumer not in self._consumers.get(ra, set()):
            self._consumers = {name: set(c) for name, c in self.dr.evaluate("list_consumers").items()}
        return consumer in self._consumers.get(ra, set())

    async def receive_telemetry(self, ven_id: str, ra: Organisation, consumer: str, scale, values) -> int:
        """Keeps a VEN's values of one consumer as its RA's figures under every command they fall in; returns how
        many figures were new. A report arriving with another VEN's certificate is dropped."""
        if not self._sender_is(ven_id):
            logger.warning("a report for %s's request came with another certificate: dropped", ven_id)
            return 0
        readings, refused = mapping.readings_of_report(ra.name, consumer, values, scale or "none")
        for refusal in refused:
            logger.warning("%s's value %r at %s refused: %s", ven_id, refusal.value, refusal.moment, refusal.reason)
        by_command: dict[str, list] = {}
        for reading in readings:
            for command_id in mapping.commands_covering(self._commands, ra, reading.minute):
                by_command.setdefault(command_id, []).append(reading)
        added = 0
        for command_id, mine in sorted(by_command.items()):
            self.store.record_telemetry(command_id, ven_id, mine)
            added += self.figures.receive(command_id, mine)
        return added
