// Command protoset writes Fabric's protobuf definitions, as a FileDescriptorSet, to standard output.
//
// The .proto sources are not published where this machine can reach them, but the Go bindings that Fabric
// itself builds with carry every file's descriptor; protoc generates the Python modules from that set.
package main

import (
	"os"
	"sort"

	_ "github.com/hyperledger/fabric-protos-go-apiv2/common"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/discovery"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/gossip"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/orderer/etcdraft"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/orderer/smartbft"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/peer/lifecycle"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/transientstore"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

func main() {
	set := &descriptorpb.FileDescriptorSet{}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
		return true
	})
	sort.Slice(set.File, func(i, j int) bool { return set.File[i].GetName() < set.File[j].GetName() })
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(set)
	if err != nil {
		os.Stderr.WriteString("protoset: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.Write(out)
}
