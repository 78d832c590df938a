//go:build tools

// Package fabricbuild pins the Fabric commands we build: `go build` of these packages, resolved through this
// module's go.mod and go.sum, gives the same binaries on every machine.
package fabricbuild

import (
	_ "github.com/hyperledger/fabric/cmd/configtxgen"
	_ "github.com/hyperledger/fabric/cmd/cryptogen"
	_ "github.com/hyperledger/fabric/cmd/orderer"
	_ "github.com/hyperledger/fabric/cmd/osnadmin"
	_ "github.com/hyperledger/fabric/cmd/peer"
)
