'use strict';
// A public order batch: market:place_orders with `ordersPerBatch` orders of one RA's consumers (the topology's),
// buys and sells at varied prices, into the gate open at the transaction's time. Every order is its own key, so
// batches never conflict; the RAs take turns.

const { WorkloadModuleBase } = require('@hyperledger/caliper-core');
const { request } = require('./common');

class PlaceOrders extends WorkloadModuleBase {
    async initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext) {
        await super.initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext);
        this.consumersByRa = roundArguments.consumersByRa; // {RA: [consumer, ...]}
        this.ras = Object.keys(this.consumersByRa);
        this.ordersPerBatch = roundArguments.ordersPerBatch;
        this.sequence = 0;
    }

    async submitTransaction() {
        const n = this.sequence++;
        const ra = this.ras[(this.workerIndex + n) % this.ras.length];
        const consumers = this.consumersByRa[ra];
        const orders = [];
        for (let i = 0; i < this.ordersPerBatch; i++) {
            const sell = (n + i) % 2 === 0;
            orders.push({
                participant: consumers[i % consumers.length],
                side: sell ? 'sell' : 'buy',
                price: sell ? 10 + ((n + i) % 15) : 12 + ((n * 7 + i) % 15), // yen/kWh: books that cross
                quantity: 0.5 + ((n + i) % 8) / 2, // kWh
            });
        }
        await this.sutAdapter.sendRequests(request(ra, 'market:place_orders', [JSON.stringify(orders)]));
    }
}

module.exports.createWorkloadModule = () => new PlaceOrders();
