// Command tamper reads or alters a Fabric peer's state database (LevelDB, `stateLeveldb`) on disk. The audit dumps
// it to compare every key the peer holds with the chain; the tamper-evidence tests alter one value in a stopped
// peer's store, as an intruder with access to its disk would. It never opens a live peer's store: LevelDB's lock
// refuses a second opener (exit status 3), so the audit dumps a snapshot of a running peer's files instead.
//
//	tamper -db <peer>/ledgersData/stateLeveldb -channel grid -dump
//	tamper -db … -channel grid -ns 'gridledger$$pRA1' -list
//	tamper -db … -channel grid -ns 'gridledger$$pRA1' -key k -value '{"x":1}'
//	tamper -db … -channel grid -ns gridledger -key-hex 00… -value …          (composite keys hold NUL bytes)
//
// The state database keeps each channel's keys as "<channel>\x00" + "d" + "<namespace>\x00<key>" (Fabric's
// leveldbhelper and stateleveldb), each value a DBValue protobuf: 1 version, 2 value, 3 metadata; the version is
// the (block, transaction) height of the write, each number order-preserving encoded (a length byte, then the
// number's big-endian bytes). "<channel>\x00s" is the savepoint: the height of the last block applied. Private
// values of collection C of chaincode CC live in namespace "CC$$pC", their hashes (keyed by the key's SHA-256) in
// "CC$$hC".
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/util"
	"google.golang.org/protobuf/encoding/protowire"
)

const exitLocked = 3

// entry is one line of -dump: a key of the channel's state with its value, as JSON ([]byte fields in base64).
type entry struct {
	Namespace string `json:"ns"`
	Key       []byte `json:"key"`
	Block     uint64 `json:"block"`
	Tx        uint64 `json:"tx"`
	Value     []byte `json:"value"`
	Metadata  []byte `json:"metadata,omitempty"`
}

func main() {
	db := flag.String("db", "", "the peer's stateLeveldb directory")
	channel := flag.String("channel", "", "channel name")
	ns := flag.String("ns", "", "namespace, e.g. gridledger$$pRA1")
	key := flag.String("key", "", "key to alter")
	keyHex := flag.String("key-hex", "", "key to alter, hex-encoded (for keys holding NUL bytes)")
	value := flag.String("value", "", "the new value")
	list := flag.Bool("list", false, "list the namespace's keys instead")
	dump := flag.Bool("dump", false, "print the savepoint, then every key of the channel as a JSON line")
	flag.Parse()
	if *keyHex != "" {
		decoded, err := hex.DecodeString(*keyHex)
		if err != nil {
			fail(2, "-key-hex: %v", err)
		}
		*key = string(decoded)
	}
	if *db == "" || *channel == "" || (!*dump && (*ns == "" || (!*list && *key == ""))) {
		fmt.Fprintln(os.Stderr, "tamper: need -db, -channel and -dump, or -ns and -key (or -key-hex, or -list)")
		os.Exit(2)
	}
	store, err := leveldb.OpenFile(*db, &opt.Options{ReadOnly: *dump || *list, ErrorIfMissing: true})
	// The flock of a database open elsewhere: EWOULDBLOCK from another process, ErrLocked from this one.
	if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, storage.ErrLocked) {
		fail(exitLocked, "%s is locked: its peer is running", *db)
	}
	if err != nil {
		fail(1, "open %s: %v", *db, err)
	}
	defer store.Close()
	channelPrefix := append([]byte(*channel), 0x00)
	if *dump {
		if err := dumpState(store, channelPrefix); err != nil {
			fail(1, "dump %s: %v", *db, err)
		}
		return
	}
	prefix := append(append(append([]byte{}, channelPrefix...), 'd'), append([]byte(*ns), 0x00)...)
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
		fail(1, "read %q in %s: %v", *key, *ns, err)
	}
	altered, err := withValue(encoded, []byte(*value))
	if err != nil {
		fail(1, "decode the stored value of %q: %v", *key, err)
	}
	if err := store.Put(full, altered, nil); err != nil {
		fail(1, "write %q: %v", *key, err)
	}
	fmt.Printf("altered %s %q\n", *ns, *key)
}

// dumpState prints {"savepoint": {"block", "tx"}} (null when the database has none), then one entry per key.
func dumpState(store *leveldb.DB, channelPrefix []byte) error {
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	encoder := json.NewEncoder(out)
	savepoint := map[string]any{"savepoint": nil}
	if raw, err := store.Get(append(append([]byte{}, channelPrefix...), 's'), nil); err == nil {
		block, tx, err := height(raw)
		if err != nil {
			return fmt.Errorf("savepoint: %v", err)
		}
		savepoint["savepoint"] = map[string]uint64{"block": block, "tx": tx}
	} else if !errors.Is(err, leveldb.ErrNotFound) {
		return err
	}
	if err := encoder.Encode(savepoint); err != nil {
		return err
	}
	prefix := append(append([]byte{}, channelPrefix...), 'd')
	iterator := store.NewIterator(util.BytesPrefix(prefix), nil)
	defer iterator.Release()
	for iterator.Next() {
		compound := bytes.TrimPrefix(iterator.Key(), prefix)
		separator := bytes.IndexByte(compound, 0x00)
		if separator < 0 {
			return fmt.Errorf("key %q has no namespace separator", compound)
		}
		version, value, metadata, err := fields(iterator.Value())
		if err != nil {
			return fmt.Errorf("value of %q: %v", compound, err)
		}
		block, tx, err := height(version)
		if err != nil {
			return fmt.Errorf("version of %q: %v", compound, err)
		}
		row := entry{string(compound[:separator]), compound[separator+1:], block, tx, value, metadata}
		if err := encoder.Encode(row); err != nil {
			return err
		}
	}
	return iterator.Error()
}

// fields splits a DBValue message into its version, value and metadata.
func fields(message []byte) (version, value, metadata []byte, err error) {
	value = []byte{}
	for len(message) > 0 {
		number, kind, n := protowire.ConsumeTag(message)
		if n < 0 {
			return nil, nil, nil, protowire.ParseError(n)
		}
		size := protowire.ConsumeFieldValue(number, kind, message[n:])
		if size < 0 {
			return nil, nil, nil, protowire.ParseError(size)
		}
		if kind == protowire.BytesType {
			content, _ := protowire.ConsumeBytes(message[n:])
			switch number {
			case 1:
				version = content
			case 2:
				value = content
			case 3:
				metadata = content
			}
		}
		message = message[n+size:]
	}
	return version, value, metadata, nil
}

// height decodes a version.Height: two order-preserving numbers (util.EncodeOrderPreservingVarUint64).
func height(encoded []byte) (block, tx uint64, err error) {
	block, n, err := orderPreserving(encoded)
	if err != nil {
		return 0, 0, err
	}
	tx, _, err = orderPreserving(encoded[n:])
	return block, tx, err
}

func orderPreserving(encoded []byte) (uint64, int, error) {
	if len(encoded) == 0 || encoded[0] > 8 || int(encoded[0]) > len(encoded)-1 {
		return 0, 0, fmt.Errorf("bad order-preserving number %x", encoded)
	}
	size := int(encoded[0])
	padded := make([]byte, 8)
	copy(padded[8-size:], encoded[1:size+1])
	return binary.BigEndian.Uint64(padded), size + 1, nil
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

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tamper: "+format+"\n", args...)
	os.Exit(code)
}
