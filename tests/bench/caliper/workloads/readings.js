'use strict';
// A private readings batch: dr:post_readings, one RA's `consumersPerBatch` declared consumers x one hour of
// per-minute readings, in transient data (never in the block), relayed by the RA with each consumer's meter
// signature, as clients/dr.py relays them.
//
// Who endorses: Caliper 0.6.0's peer-gateway connector refuses targetOrganizations/targetPeers, so Fabric's
// Gateway chooses. With transient data it simulates on the submitter's own peer (the RA's), then asks discovery
// for the rest of the collection's endorsement policy among the collection's members only (Fabric v3.1.5,
// internal/pkg/gateway/endorse.go): the RA's AC or the TSO. The readings reach no other organisation.
//
// The setup (tests/bench/caliper/run.py) issued the command, registered and declared the consumers
// "<RA>-B00000"..., and signed each batch with its meters' keys into `batchesDirectory/<unit>.json` (the meters'
// keys stay in Python; here the batch is only sent). Units (consumer group, hour) are dealt to the workers in
// turn, from `unitOffset` to `unitEnd`, so no two batches share a consumer-hour and none conflicts with another.

const fs = require('fs');
const path = require('path');
const { WorkloadModuleBase } = require('@hyperledger/caliper-core');
const { request } = require('./common');

class PostReadings extends WorkloadModuleBase {
    async initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext) {
        await super.initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext);
        const args = roundArguments;
        this.command = args.command;
        this.directory = args.batchesDirectory;
        this.end = args.unitEnd;
        // Rounds of this workload continue where the previous one stopped (args.unitOffset: units it may have used).
        this.next = (args.unitOffset || 0) + workerIndex;
        this.stride = totalWorkers;
    }

    async submitTransaction() {
        if (this.next >= this.end) {
            throw new Error(`no signed readings left to post: units up to ${this.end}; lower the round's duration or rate`);
        }
        const unit = this.next;
        this.next += this.stride;
        // Read synchronously: until sendRequests counts the transaction as submitted, the fixed-load controller
        // would start more than its load.
        const batch = JSON.parse(fs.readFileSync(path.join(this.directory, `${unit}.json`), 'utf8'));
        await this.sutAdapter.sendRequests(
            request(batch.ra, 'dr:post_readings', [this.command.id], {
                transientMap: { readings: batch.readings, meter_signatures: batch.meter_signatures },
            })
        );
    }
}

module.exports.createWorkloadModule = () => new PostReadings();
