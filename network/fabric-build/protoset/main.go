// Command protoset writes Fabric's protobuf definitions, as a FileDescriptorSet, to standard output.
//
// The .proto sources are not published where this machine can reach them, but the Go bindings that Fabric
// itself builds with carry every file's descriptor; protoc generates the Python modules from that set.
package main

import (
	"os"
	"sort"

	_ "github.com/hyperledger/fabric-protos-go/common"
	_ "github.com/hyperledger/fabric-protos-go/discovery"
	_ "github.com/hyperledger/fabric-protos-go/gateway"
	_ "github.com/hyperledger/fabric-protos-go/gossip"
	_ "github.com/hyperledger/fabric-protos-go/ledger/queryresult"
	_ "github.com/hyperledger/fabric-protos-go/ledger/rwset"
	_ "github.com/hyperledger/fabric-protos-go/ledger/rwset/kvrwset"
	_ "github.com/hyperledger/fabric-protos-go/msp"
	_ "github.com/hyperledger/fabric-protos-go/orderer"
	_ "github.com/hyperledger/fabric-protos-go/orderer/etcdraft"
	_ "github.com/hyperledger/fabric-protos-go/peer"
	_ "github.com/hyperledger/fabric-protos-go/peer/lifecycle"
	_ "github.com/hyperledger/fabric-protos-go/transientstore"
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
