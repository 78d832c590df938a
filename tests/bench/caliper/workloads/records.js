'use strict';
// A simple public write, records:put_record with a fresh key each time: the operation tests/bench/bench_gateway.py
// measures, so Caliper's figure for it stands beside ours. Each worker submits as the organisations in turn.

const { WorkloadModuleBase } = require('@hyperledger/caliper-core');
const { request } = require('./common');

class PutRecord extends WorkloadModuleBase {
    async initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext) {
        await super.initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext);
        this.orgs = roundArguments.orgs;
        this.sequence = 0;
    }

    async submitTransaction() {
        const n = this.sequence++;
        const org = this.orgs[(this.workerIndex + n) % this.orgs.length];
        const key = `caliper-${this.roundIndex}-${this.workerIndex}-${n}`;
        await this.sutAdapter.sendRequests(request(org, 'records:put_record', [key, JSON.stringify({ n })]));
    }
}

module.exports.createWorkloadModule = () => new PutRecord();
