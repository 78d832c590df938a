'use strict';
// A sealed order batch: market:place_orders with `ordersPerBatch` commitments (SHA-256 of each order and its salt,
// chaincode.contracts.market_seed.order_commitment), placed by one RA for its consumers into the gate open at the
// transaction's time. Every order is its own key, so batches never conflict; the RAs take turns.
//
// The setup (tests/bench/caliper/run.py) sealed each batch ahead, in Python, as clients.market.MarketClient seals
// (a random salt per order, kept by the RA's market client to reveal the order after its gate ends), into
// `batchesDirectory/<n>.json` ({"ra", "orders": the sealed list as place_orders takes it}); here the batch is
// only sent. Batches are dealt to the workers in turn, up to `batches`; each worker reads its share at the start.

const fs = require('fs');
const path = require('path');
const { WorkloadModuleBase } = require('@hyperledger/caliper-core');
const { request } = require('./common');

class PlaceOrders extends WorkloadModuleBase {
    async initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext) {
        await super.initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext);
        // This worker's share, read now: a read in submitTransaction, before sendRequests counts the transaction
        // as submitted, would let the fixed-load controller start more than its load.
        this.batches = [];
        for (let n = workerIndex; n < roundArguments.batches; n += totalWorkers) {
            this.batches.push(fs.readFileSync(path.join(roundArguments.batchesDirectory, `${n}.json`), 'utf8'));
        }
        this.next = 0;
    }

    async submitTransaction() {
        if (this.next >= this.batches.length) {
            throw new Error(`no sealed order batches left to place: ${this.batches.length} each; lower the round's duration`);
        }
        const batch = JSON.parse(this.batches[this.next++]);
        await this.sutAdapter.sendRequests(request(batch.ra, 'market:place_orders', [batch.orders]));
    }
}

module.exports.createWorkloadModule = () => new PlaceOrders();
