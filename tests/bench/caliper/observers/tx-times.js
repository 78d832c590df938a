'use strict';
// A Caliper transaction observer that appends each finished transaction's round, status and create/final times
// (ms) to <directory>/worker-<index>.tsv, so run.py computes throughput and latency percentiles of the
// successful transactions only (Caliper's own "Throughput" counts failed ones too; its latencies are min/avg/max).

const fs = require('fs');
const path = require('path');

class TxTimes {
    constructor(options, messenger, workerIndex) {
        fs.mkdirSync(options.directory, { recursive: true });
        this.file = path.join(options.directory, `worker-${workerIndex}.tsv`);
        this.lines = [];
    }

    async activate(roundIndex, roundLabel) {
        this.label = roundLabel;
        this.lines = [];
    }

    async deactivate() {
        fs.appendFileSync(this.file, this.lines.join(''));
        this.lines = [];
    }

    txSubmitted(count) {}

    txFinished(results) {
        for (const result of Array.isArray(results) ? results : [results]) {
            this.lines.push(
                `${this.label}\t${result.GetStatus()}\t${result.GetTimeCreate()}\t${result.GetTimeFinal()}\n`
            );
        }
    }
}

module.exports.createTxObserver = (options, messenger, workerIndex) => new TxTimes(options, messenger, workerIndex);
