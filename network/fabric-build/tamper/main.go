// Command tamper alters one value in a stopped Fabric peer's state database, as an intruder with access to the
// peer's disk would: the tamper-evidence tests run it, then show that the change is caught by comparing with the
// hashes the blocks record. It never runs against a live peer (LevelDB's lock refuses a second opener).
//
//	tamper -db <peer>/ledgersData/stateLeveldb -channel grid -ns 'gridledger$$pRA1' -key k -value '{"x":1}'
//	tamper -db … -channel grid -ns 'gridledger$$pRA1' -list
//
// The state database keeps each channel's keys as "<channel>\x00" + "d" + "<namespace>\x00<key>" (Fabric's
// leveldbhelper and stateleveldb), each value a DBValue protobuf: 1 version, 2 value, 3 metadata. Private values
// of collection C of chaincode CC live in namespace "CC$$pC", their hashes in "CC$$hC".
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
	"google.golang.org/protobuf/encoding/protowire"
)

func main() {
	db := flag.String("db", "", "the peer's stateLeveldb directory")
	channel := flag.String("channel", "", "channel name")
	ns := flag.String("ns", "", "namespace, e.g. gridledger$$pRA1")
	key := flag.String("key", "", "key to alter")
	value := flag.String("value", "", "the new value")
	list := flag.Bool("list", false, "list the namespace's keys instead")
	flag.Parse()
	if *db == "" || *channel == "" || *ns == "" || (!*list && *key == "") {
		fmt.Fprintln(os.Stderr, "tamper: need -db, -channel, -ns and -key (or -list)")
		os.Exit(2)
	}
	store, err := leveldb.OpenFile(*db, nil)
	if err != nil {
		fail("open %s: %v", *db, err)
	}
	defer store.Close()
	prefix := append(append([]byte(*channel), 0x00, 'd'), append([]byte(*ns), 0x00)...)
	if *list {
		iterator := store.NewIterator(util.BytesPrefix(prefix), nil)
		for iterator.Next() {
			fmt.Printf("%q\n", bytes.TrimPrefix(iterator.Key(), prefix))
		}
		iterator.Release()
		return
	}
	full := append(append([]byte{}, prefix...), []byte(*key)...)
	encoded, err := store.Get(full, nil)
	if err != nil {
		fail("read %q in %s: %v", *key, *ns, err)
	}
	altered, err := withValue(encoded, []byte(*value))
	if err != nil {
		fail("decode the stored value of %q: %v", *key, err)
	}
	if err := store.Put(full, altered, nil); err != nil {
		fail("write %q: %v", *key, err)
	}
	fmt.Printf("altered %s %q\n", *ns, *key)
}

// withValue is the DBValue message with field 2 (the value) replaced, the other fields kept as they were.
func withValue(message, value []byte) ([]byte, error) {
	var out []byte
	replaced := false
	for len(message) > 0 {
		number, kind, n := protowire.ConsumeTag(message)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		size := protowire.ConsumeFieldValue(number, kind, message[n:])
		if size < 0 {
			return nil, protowire.ParseError(size)
		}
		if number == 2 && kind == protowire.BytesType {
			out = protowire.AppendTag(out, 2, protowire.BytesType)
			out = protowire.AppendBytes(out, value)
			replaced = true
		} else {
			out = append(out, message[:n+size]...)
		}
		message = message[n+size:]
	}
	if !replaced {
		out = protowire.AppendTag(out, 2, protowire.BytesType)
		out = protowire.AppendBytes(out, value)
	}
	return out, nil
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tamper: "+format+"\n", args...)
	os.Exit(1)
}
