module gridledger/network/fabricbuild

go 1.26

require (
	github.com/hyperledger/fabric-protos-go-apiv2 v0.3.7
	github.com/syndtr/goleveldb v1.0.1-0.20220721030215-126854af5e6d
	google.golang.org/protobuf v1.36.11
)

require (
	github.com/golang/snappy v0.0.4 // indirect
	golang.org/x/net v0.34.0 // indirect
	golang.org/x/sys v0.29.0 // indirect
	golang.org/x/text v0.21.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20250115164207-1a7da9e5054f // indirect
	google.golang.org/grpc v1.67.3 // indirect
)
