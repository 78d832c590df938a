'use strict';
// A market gate: market:close_gate of a gate that has ended with orders in it (the order round's: the setup
// configured gates of `gateSeconds`), which snapshots the gate's book into one key and fixes its seed (B7).
// Each worker asks its own peer for the pending gates (list_gates) and closes every totalWorkers-th, oldest first;
// run.py keeps the round's txNumber below the number of gates the order round filled.

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
            throw new Error(`no ended gate with orders left to close (had ${this.gates.length}); lower txNumber`);
        }
        const gate = this.gates[this.next++];
        await this.sutAdapter.sendRequests(request(this.org, 'market:close_gate', [gate]));
    }
}

module.exports.createWorkloadModule = () => new CloseGate();
