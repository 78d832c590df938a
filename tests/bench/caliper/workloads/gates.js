'use strict';
// A market gate: market:close_gate of a gate that ended with orders in it, which snapshots the gate's revealed
// book into one key and fixes its seed from the matchers' revealed contributions (B7). The order round filled the
// gates (the setup configured gates of `gateSeconds`); between the two Caliper launches run.py revealed their
// orders and the matchers' contributions, so they are "closing". Each worker asks its own peer for those
// (list_gates) and closes every totalWorkers-th, oldest first; run.py sets txNumber to what it may close.

const { WorkloadModuleBase } = require('@hyperledger/caliper-core');
const { request } = require('./common');

class CloseGate extends WorkloadModuleBase {
    async initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext) {
        await super.initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext);
        this.org = roundArguments.closer;
        const answer = await sutAdapter.sendRequests(
            request(this.org, 'market:list_gates', ['500'], { readOnly: true })
        );
        if (answer.GetStatus() !== 'success') {
            throw new Error('list_gates failed: cannot find the gates to close');
        }
        const gates = JSON.parse(Buffer.from(answer.GetResult()).toString())
            .filter((gate) => gate.status === 'closing' && gate.orders > 0)
            .sort((a, b) => a.start_ms - b.start_ms);
        this.gates = gates.filter((_, i) => i % totalWorkers === workerIndex).map((gate) => gate.id);
        this.next = 0;
    }

    async submitTransaction() {
        if (this.next >= this.gates.length) {
            throw new Error(`no closing gate with orders left (had ${this.gates.length}); lower txNumber`);
        }
        const gate = this.gates[this.next++];
        await this.sutAdapter.sendRequests(request(this.org, 'market:close_gate', [gate]));
    }
}

module.exports.createWorkloadModule = () => new CloseGate();
