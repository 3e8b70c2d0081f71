package recordblock

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/s2"
)

func TestRecordsComeBackInOrder(t *testing.T) {
	var records [][]byte
	for i := range 300 {
		records = append(records, fmt.Appendf(nil, "record %d %s", i, bytes.Repeat([]byte{'x'}, i)))
	}
	records = append(records, []byte{}) // an empty record is kept too
	var buf []byte
	block, _ := Append([]byte("header"), nil, records)
	if !bytes.HasPrefix(block, []byte("header")) {
		t.Fatal("Append did not keep what dst held")
	}
	var got [][]byte
	n, stopped, err := Each(block[len("header"):], &buf, func(r []byte) bool { got = append(got, bytes.Clone(r)); return true })
	if err != nil || stopped || n != len(records) || len(got) != len(records) {
		t.Fatalf("read %d of %d, stopped %v: %v", n, len(records), stopped, err)
	}
	for i := range records {
		if !bytes.Equal(got[i], records[i]) {
			t.Fatalf("record %d: %q, want %q", i, got[i], records[i])
		}
	}
	if n, stopped, _ := Each(block[len("header"):], &buf, func([]byte) bool { return false }); n != 1 || !stopped {
		t.Fatalf("a stop after the first: %d records, stopped %v", n, stopped)
	}
}

func TestDamageIsCorrupt(t *testing.T) {
	block, _ := Append(nil, nil, [][]byte{[]byte("one"), []byte("two")})
	for name, damaged := range map[string][]byte{
		"cut short":         block[:len(block)-2],
		"not s2":            []byte("\xff\xff\xff\xff\xff"),
		"a length overruns": s2.Encode(nil, []byte{0x09, 'a'}),
		"a bad uvarint":     s2.Encode(nil, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
	} {
		var buf []byte
		if _, _, err := Each(damaged, &buf, func([]byte) bool { return true }); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}
