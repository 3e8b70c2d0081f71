package event

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditexport/auditexport/event/eventtest"
)

// fixedIDs gives events without an id the same id on both paths.
func fixedIDs() (uuid.UUID, error) {
	return uuid.MustParse("01900000-0000-7000-8000-000000000001"), nil
}

// fastPathAgrees checks one line: when the fast path takes it, the general path takes it too and
// makes the same record. It reports whether the fast path took it.
func fastPathAgrees(t *testing.T, line []byte) bool {
	t.Helper()
	took := fastPathAgreesAfter(t, nil, line)
	// The decoder remembers the keys of the event before (nextKey): the same line after itself
	// meets every key where it is expected, after the sample the envelope's keys in its order.
	for _, before := range [][]byte{line, eventtest.Sample(3, time.Now())} {
		if fastPathAgreesAfter(t, before, line) != took {
			t.Fatalf("the fast path took %q alone: %v, after %q: %v", line, took, before, !took)
		}
	}
	return took
}

// fastPathAgreesAfter is fastPathAgrees for line decoded by a decoder that decoded before first
// (when not nil).
func fastPathAgreesAfter(t *testing.T, before, line []byte) bool {
	t.Helper()
	received := time.Date(2026, 11, 21, 8, 0, 0, 123456789, time.UTC)
	fast := Decoder{ids: fixedIDs}
	if before != nil {
		fast.fastAppend(&Batch{}, before, received)
	}
	var b Batch
	if !fast.fastAppend(&b, line, received) {
		if b.Len() != 0 || len(b.Data) != 0 {
			t.Fatalf("the fast path declined %q but changed the batch", line)
		}
		return false
	}
	general := Decoder{ids: fixedIDs, generalOnly: true}
	want, err := general.NDJSON(line, received)
	if err != nil {
		t.Fatalf("the fast path took %q, which the general path refuses: %v", line, err)
	}
	if b.Len() != 1 || !bytes.Equal(b.Record(0), want.Record(0)) {
		got, _ := Decode(0, b.Record(0))
		w, _ := Decode(0, want.Record(0))
		t.Fatalf("records differ for %q:\nfast    %+v\ngeneral %+v", line, got, w)
	}
	return true
}

var fastSeeds = []string{
	`{"eventTimestamp":"2026-11-20T08:00:00Z"}`,
	`{"eventTimestamp":"2026-11-20T08:00:00.5+02:00","receivedTimestamp":null,"id":null}`,
	`{ "eventTimestamp" : "2026-11-20T08:00:00.123456789-03:30" , "targets" : [ {"a" : 1} , 2, "x y" ] , "k":{ "z" : [ true,false,null ] } }`,
	`{"eventTimestamp":"2028-02-29T23:59:59Z","auditPayload":{"type":"Q","q":"say \"hi\"\n"}}`,
	`{"eventTimestamp":"2028-02-29T23:59:59Z","auditPayload":{"q":1}}`,
	`{"eventTimestamp":"2028-02-29T23:59:59Z","auditPayload":{"type":null,"q":[]}}`,
	`{"eventTimestamp":"2028-02-29T23:59:59Z","auditPayload":{"type":1}}`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z","actor":{"id":"\u00e9","k":1}}`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z","actor":{"id":"a","name":null,"type":"USER","identityProvider":"o","profileId":"1","id":"b"}}`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z","actor":null,"tenantId":"","action":null}`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z","x":1,"x":-0.5e+3,"y":"é","z":2}`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z","<z>":2}`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z","tenantId":"a","tenantId":"b"}`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z","tenantId":"a\tb"}`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z","tenantId":"\ud83d\ude00"}`,
	`{"eventTimestamp":"0000-01-01T00:00:00Z","id":"{7f1c3a52-8e0b-4c1e-9f5a-2b6d1e0c9a11}"}`,
	`{"eventTimestamp":"1969-12-31T23:59:59.999999Z","id":"urn:uuid:7f1c3a52-8e0b-4c1e-9f5a-2b6d1e0c9a11"}`,
	`{"eventTimestamp":"2026-11-20t08:00:00z"}`,
	`{"eventTimestamp":"2026-11-31T08:00:00Z"}`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z","relatedResources":{}}`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z","n":01}`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z"} x`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z","s":"` + "\xff" + `"}`,
	`[{"eventTimestamp":"2026-11-20T08:00:00Z"}]`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z",}`,
	`{"eventTimestamp":"2026-11-20T08:00:00Z","a":[1,]}`,
}

// TestFastPathAgrees runs the seeds and the sample events through both paths; the usual events
// must take the fast path.
func TestFastPathAgrees(t *testing.T) {
	for _, s := range fastSeeds {
		fastPathAgrees(t, []byte(s))
	}
	for _, line := range bytes.Split(bytes.TrimSpace(eventtest.NDJSON(0, 200, time.Now(), time.Second)), []byte("\n")) {
		if !fastPathAgrees(t, line) {
			t.Fatalf("the fast path declined a usual event: %s", line)
		}
	}
	for _, s := range []string{fastSeeds[0], fastSeeds[2], fastSeeds[3], fastSeeds[10]} {
		if !fastPathAgrees(t, []byte(s)) {
			t.Errorf("the fast path declined %s", s)
		}
	}
}

// FuzzFastPathAgrees: whatever the fast path takes, the general path takes and records alike.
func FuzzFastPathAgrees(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Add(eventtest.Sample(7, time.Now()))
	f.Fuzz(func(t *testing.T, line []byte) {
		line = bytes.TrimSpace(line)
		if bytes.IndexByte(line, '\n') >= 0 {
			return // NDJSONInto splits lines first: the fast path never meets a newline
		}
		fastPathAgrees(t, line)
	})
}

// TestKnownKeysTakeOnlyTheSameText: after an event, the next one's keys are taken without a
// scan only where written exactly as before; spaces around a colon, an escaped key, a key that
// merely starts the same, another order and a repeated key decode as they do alone.
func TestKnownKeysTakeOnlyTheSameText(t *testing.T) {
	sample := eventtest.Sample(3, time.Now())
	for _, line := range []string{
		`{"action" :"A","eventTimestamp":"2026-11-20T08:00:00Z"}`,
		`{"action": "A","eventTimestamp":"2026-11-20T08:00:00Z"}`,
		`{"act\u0069on":"A","eventTimestamp":"2026-11-20T08:00:00Z"}`,
		`{"actionX":"A","eventTimestamp":"2026-11-20T08:00:00Z"}`,
		`{"actionStatus":"S","action":"A","eventTimestamp":"2026-11-20T08:00:00Z"}`,
		`{"action":"A","action":"B","eventTimestamp":"2026-11-20T08:00:00Z"}`,
		string(eventtest.Sample(4, time.Now())),
	} {
		took := fastPathAgreesAfter(t, nil, []byte(line))
		if after := fastPathAgreesAfter(t, sample, []byte(line)); after != took {
			t.Errorf("%s: the fast path took it alone: %v, after the sample: %v", line, took, after)
		}
	}
}

// FuzzParseTimestamp: what parseTimestamp reads, time.Parse reads to the same instant.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"2026-11-20T08:00:00Z", "2026-02-29T23:59:59.999999999+14:00", "0000-03-01T00:00:00.1-23:59",
		"1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "9999-12-31T23:59:59.9999999999Z", "2026-11-20T08:00:00.Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTimestamp([]byte(s))
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || want.UnixMicro() != got {
			t.Fatalf("%q: parseTimestamp %d, time.Parse %d %v", s, got, want.UnixMicro(), err)
		}
	})
}

// TestFirstSpecialFindsEveryByte: the 8-byte test finds the first quote, backslash, control or
// non-ASCII byte at any position, whatever bytes follow it, and passes plain text.
func TestFirstSpecialFindsEveryByte(t *testing.T) {
	plain := []byte("a~ {}:,!")
	if n := firstSpecial(le(plain)); n != 8 {
		t.Fatalf("plain %q: special byte found at %d", plain, n)
	}
	for pos := range 8 {
		for c := range 256 {
			for _, later := range []byte{'a', '"', '\\', 0, 0x1f, 0x80, 0xff} {
				b := bytes.Clone(plain)
				b[pos] = byte(c)
				for i := pos + 1; i < 8; i++ {
					b[i] = later
				}
				want := pos
				if stringBytes[c] == bytePlain {
					want = 8
					if stringBytes[later] != bytePlain && pos < 7 {
						want = pos + 1
					}
				}
				if got := firstSpecial(le(b)); got != want {
					t.Fatalf("%q: first special byte at %d, want %d", b, got, want)
				}
			}
		}
	}
}

func le(b []byte) uint64 {
	var x uint64
	for i := 7; i >= 0; i-- {
		x = x<<8 | uint64(b[i])
	}
	return x
}
