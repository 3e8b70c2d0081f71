package store

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auditexport.db")
	key := make([]byte, MasterKeySize)
	st, err := Open(Config{Path: path, MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	err = st.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, schemaVersion+1))
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(Config{Path: path, MasterKey: key})
	if err == nil || !strings.Contains(err.Error(), "newer auditexport") {
		t.Fatalf("open of a newer schema: %v", err)
	}
}
