'use strict';
// A sealed order batch: market:place_orders with `ordersPerBatch` commitments (SHA-256 of each order and its salt,
// chaincode.contracts.market_seed.order_commitment), placed by one RA for its consumers into the gate open at the
// transaction's time. Every order is its own key, so batches never conflict; the RAs take turns.
//
// The setup (tests/bench/caliper/run.py) sealed each batch ahead, in Python, as clients.market.MarketClient seals
// (a random salt per order, kept by the RA's market client to reveal the order after its gate ends), into
// `batchesDirectory/<n>.json` ({"ra", "orders": the sealed list as place_orders takes it}); here the batch is
// only sent. Batches are dealt to the workers in turn, up to `batches`.

const fs = require('fs');
const path = require('path');
const { WorkloadModuleBase } = require('@hyperledger/caliper-core');
const { request } = require('./common');

class PlaceOrders extends WorkloadModuleBase {
    async initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext) {
        await super.initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext);
        this.directory = roundArguments.batchesDirectory;
        this.end = roundArguments.batches;
        this.next = workerIndex;
        this.stride = totalWorkers;
    }

    async submitTransaction() {
        if (this.next >= this.end) {
            throw new Error(`no sealed order batches left to place: ${this.end} sealed; lower the round's duration`);
        }
        const batch = JSON.parse(await fs.promises.readFile(path.join(this.directory, `${this.next}.json`), 'utf8'));
        this.next += this.stride;
        await this.sutAdapter.sendRequests(request(batch.ra, 'market:place_orders', [batch.orders]));
    }
}

module.exports.createWorkloadModule = () => new PlaceOrders();
