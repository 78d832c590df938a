'use strict';
// What the workloads share: the chaincode's name, who submits (an identity the generated network configuration
// names "<org>-User1"), and one request to the Fabric connector.

const CHAINCODE = 'gridledger'; // consortium.CHAINCODE_NAME, the contract id run.py puts in the network configuration

function identityOf(org) {
    return { invokerIdentity: `${org}-User1`, invokerMspId: `${org}MSP` };
}

function request(org, contractFunction, contractArguments, extra = {}) {
    return {
        contractId: CHAINCODE,
        contractFunction,
        contractArguments,
        readOnly: false,
        ...identityOf(org),
        ...extra,
    };
}

module.exports = { CHAINCODE, identityOf, request };
