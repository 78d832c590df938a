'use strict';
// A private readings batch: dr:post_readings, one RA's `consumersPerBatch` declared consumers x one hour of
// per-minute readings, in transient data (never in the block), as sim/meters.py and clients/dr.py post them.
//
// Who endorses: Caliper 0.6.0's peer-gateway connector refuses targetOrganizations/targetPeers, so Fabric's
// Gateway chooses. With transient data it simulates on the submitter's own peer (the RA's), then asks discovery
// for the rest of the collection's endorsement policy among the collection's members only (Fabric v3.1.5,
// internal/pkg/gateway/endorse.go): the RA's AC or the TSO. The readings reach no other organisation.
//
// The setup (tests/bench/caliper/run.py) issued the command and registered and declared the consumers
// "<RA>-B00000"...; units (consumer group, hour) are dealt to the workers in turn, so no two batches share a
// consumer-hour and none conflicts with another.

const { WorkloadModuleBase } = require('@hyperledger/caliper-core');
const { request } = require('./common');

const MINUTE_MS = 60 * 1000;
const JST_OFFSET_MS = 9 * 60 * MINUTE_MS;

function minuteOf(label) {
    // "YYYY-MM-DDTHH:MM" in JST, as the ledger labels minutes.
    return Date.parse(`${label}:00+09:00`) / MINUTE_MS;
}

function labelOf(minute) {
    return new Date(minute * MINUTE_MS + JST_OFFSET_MS).toISOString().slice(0, 16);
}

class PostReadings extends WorkloadModuleBase {
    async initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext) {
        await super.initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext);
        const args = roundArguments;
        this.command = args.command;
        this.ras = args.ras;
        const groups = Math.ceil(args.consumersPerRa / args.consumersPerBatch);
        this.units = []; // [ra, first consumer number, consumers, first minute of the hour]
        const first = minuteOf(args.command.start);
        const last = minuteOf(args.command.end);
        for (let hour = first; hour + 59 <= last; hour += 60) {
            for (let group = 0; group < groups; group++) {
                for (const ra of this.ras) {
                    const from = group * args.consumersPerBatch;
                    this.units.push([ra, from, Math.min(args.consumersPerBatch, args.consumersPerRa - from), hour]);
                }
            }
        }
        // Rounds of this workload continue where the previous one stopped (args.unitOffset: units it may have used).
        this.next = (args.unitOffset || 0) + workerIndex;
        this.stride = totalWorkers;
    }

    async submitTransaction() {
        if (this.next >= this.units.length) {
            throw new Error(`no readings left to post: ${this.units.length} units; lower the round's duration or rate`);
        }
        const [ra, from, count, hour] = this.units[this.next];
        this.next += this.stride;
        const readings = [];
        for (let c = from; c < from + count; c++) {
            const consumer = `${ra}-B${String(c).padStart(5, '0')}`;
            for (let minute = hour; minute < hour + 60; minute++) {
                readings.push({ consumer, minute: labelOf(minute), wh: 100 + ((c * 7 + minute) % 200) });
            }
        }
        await this.sutAdapter.sendRequests(
            request(ra, 'dr:post_readings', [this.command.id], {
                transientMap: { readings: JSON.stringify(readings) },
            })
        );
    }
}

module.exports.createWorkloadModule = () => new PostReadings();
