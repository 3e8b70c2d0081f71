package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/event/eventtest"
)

var received = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func decodeOne(t *testing.T, line string) event.Event {
	t.Helper()
	var d event.Decoder
	b, err := d.NDJSON([]byte(line), received)
	if err != nil {
		t.Fatalf("decode %s: %v", line, err)
	}
	if b.Len() != 1 {
		t.Fatalf("%d records", b.Len())
	}
	e, err := event.Decode(7, b.Record(0))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRoundTripKeepsEveryField(t *testing.T) {
	line := `{"id":"7f1c3a52-8e0b-4c1e-9f5a-2b6d1e0c9a11","tenantId":"acme","action":"QUERY","actionStatus":"SUCCESS",
		"eventTimestamp":"2026-11-20T08:15:30.123456Z","receivedTimestamp":"2026-11-20T08:15:31+01:00",
		"actor":{"id":"u1","name":"Ada Lovelace","type":"USER","identityProvider":"okta","profileId":"17"},
		"actorIp":"10.0.0.1","targetType":"DATA_SOURCE","targets":[{"id":"1","name":"x"}],"relatedResources":[],
		"auditPayload":{"type":"QueryAuditPayload","version":1,"query":"SELECT \"a\" FROM t"},
		"requestId":"r-1","sessionId":"s-1","customerField":{"nested":[1,2]},"weird key \u0001":"v"}`
	e := decodeOne(t, strings.ReplaceAll(line, "\n\t\t", " "))
	want := event.Event{
		Seq: 7, ID: uuid.MustParse("7f1c3a52-8e0b-4c1e-9f5a-2b6d1e0c9a11"), TenantID: "acme", Action: "QUERY", ActionStatus: "SUCCESS",
		EventTimestamp:    time.Date(2026, 11, 20, 8, 15, 30, 123456000, time.UTC),
		ReceivedTimestamp: time.Date(2026, 11, 20, 7, 15, 31, 0, time.UTC),
		Actor:             event.Actor{ID: "u1", Name: "Ada Lovelace", Type: "USER", IdentityProvider: "okta", ProfileID: "17"},
		ActorIP:           "10.0.0.1", TargetType: "DATA_SOURCE", RequestID: "r-1", SessionID: "s-1",
		Targets: json.RawMessage(`[{"id":"1","name":"x"}]`), RelatedResources: json.RawMessage(`[]`),
		AuditPayload: json.RawMessage(`{"type":"QueryAuditPayload","version":1,"query":"SELECT \"a\" FROM t"}`),
		Additional:   json.RawMessage(`{"customerField":{"nested":[1,2]},"weird key \u0001":"v"}`),
	}
	if got, _ := json.Marshal(e); !bytes.Equal(got, mustJSON(t, want)) {
		t.Fatalf("got  %s\nwant %s", got, mustJSON(t, want))
	}
	if !json.Valid(e.Additional) {
		t.Fatalf("additional fields are not valid JSON: %s", e.Additional)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDefaults(t *testing.T) {
	e := decodeOne(t, `{"eventTimestamp":"2026-11-20T08:00:00Z","id":null,"actor":null,"targets":null}`)
	if e.ID == uuid.Nil || e.ID.Version() != 7 {
		t.Errorf("no id generated: %v", e.ID)
	}
	if !e.ReceivedTimestamp.Equal(received) {
		t.Errorf("receivedTimestamp = %v, want the receipt time", e.ReceivedTimestamp)
	}
	if e.Targets != nil || e.Additional != nil || e.Actor != (event.Actor{}) {
		t.Errorf("nulls were kept as values: %+v", e)
	}
}

func TestUnknownActorFieldsAreKept(t *testing.T) {
	e := decodeOne(t, `{"eventTimestamp":"2026-11-20T08:00:00Z","actor":{"id":"u1","department":"finance"}}`)
	if e.Actor.ID != "u1" || string(e.Additional) != `{"actor":{"id":"u1","department":"finance"}}` {
		t.Fatalf("actor %+v, additional %s", e.Actor, e.Additional)
	}
}

func TestBadEventsAreNamedByLine(t *testing.T) {
	body := strings.Join([]string{
		`{"eventTimestamp":"2026-11-20T08:00:00Z"}`,
		`{"eventTimestamp":"yesterday"}`,
		``,
		`{"action":"QUERY"}`,
		`{"eventTimestamp":"2026-11-20T08:00:00Z","id":"not-a-uuid"}`,
		`{"eventTimestamp":"2026-11-20T08:00:00Z","tenantId":42}`,
		`{"eventTimestamp":"2026-11-20T08:00:00Z","targets":{"id":1}}`,
		`{"eventTimestamp":"2026-11-20T08:00:00Z","auditPayload":[1]}`,
		`{"eventTimestamp":"2026-11-20T08:00:00Z","auditPayload":{"type":3}}`,
		`{"eventTimestamp":"2026-11-20T08:00:00Z","actor":"bob"}`,
		`{"eventTimestamp":"2026-11-20T08:00:00Z","actor":{"name":false}}`,
		`[1,2]`,
		`{"eventTimestamp": 1700000000}`,
		`{"broken": `,
	}, "\n")
	var d event.Decoder
	_, err := d.NDJSON([]byte(body), received)
	var bad *event.BatchError
	if !errors.As(err, &bad) {
		t.Fatalf("err = %v", err)
	}
	want := map[int]string{
		2:  "eventTimestamp must be an RFC 3339 timestamp",
		4:  "eventTimestamp is required",
		5:  `id must be a UUID, got "not-a-uuid"`,
		6:  "tenantId must be a string, not number",
		7:  "targets must be an array, not object",
		8:  "auditPayload must be an object, not array",
		9:  "auditPayload.type must be a string",
		10: "actor must be an object, not string",
		11: "actor.name must be a string",
		12: "an event must be a JSON object, not array",
		13: "eventTimestamp must be an RFC 3339 timestamp string",
		14: "invalid JSON",
	}
	got := map[int]string{}
	for _, l := range bad.Lines {
		got[l.Line] = l.Reason
	}
	if len(got) != len(want) {
		t.Errorf("bad lines %v, want %d of them", got, len(want))
	}
	for line, reason := range want {
		if !strings.Contains(got[line], reason) {
			t.Errorf("line %d: %q, want %q", line, got[line], reason)
		}
	}
}

func TestArrayBodies(t *testing.T) {
	var d event.Decoder
	b, err := d.Array([]byte(`[{"eventTimestamp":"2026-11-20T08:00:00Z"},{"eventTimestamp":"2026-11-20T09:00:00Z"}]`), received)
	if err != nil || b.Len() != 2 {
		t.Fatalf("array: %v %v", b, err)
	}
	if b, err := d.Array([]byte(`{"eventTimestamp":"2026-11-20T08:00:00Z"}`), received); err != nil || b.Len() != 1 {
		t.Fatalf("single object: %v", err)
	}
	for body, want := range map[string]string{
		`[{"eventTimestamp":"2026-11-20T08:00:00Z"},{"x":1}]`: "event 2: eventTimestamp is required",
		`[]`:              "holds no events",
		`[1`:              "invalid JSON",
		`"just a string"`: "must be a JSON object",
	} {
		if _, err := d.Array([]byte(body), received); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
	for name, decode := range map[string]func([]byte, time.Time) (*event.Batch, error){"NDJSON": d.NDJSON, "array": d.Array} {
		for _, body := range []string{"", "\n \n"} {
			if _, err := decode([]byte(body), received); err == nil || err.Error() != "event 0: the body holds no events" {
				t.Errorf("%s, body %q: %v", name, body, err)
			}
		}
	}
}

// Every problem of every bad event is named, not only the first of each.
func TestEveryProblemIsNamed(t *testing.T) {
	var d event.Decoder
	bad1 := `{"id":"not-a-uuid","eventTimestamp":"yesterday","tenantId":42,"actor":{"id":1,"name":false}}`
	bad2 := `{"action":7}`
	want := []string{
		`1: id must be a UUID, got "not-a-uuid"`,
		"1: eventTimestamp must be an RFC 3339 timestamp such as 2026-11-21T12:00:00Z",
		"1: tenantId must be a string, not number",
		"1: actor.id must be a string, not number",
		"1: actor.name must be a string, not false",
		"3: action must be a string, not number",
		"3: eventTimestamp is required",
	}
	for unit, decode := range map[string]func() error{
		"line": func() error {
			_, err := d.NDJSON([]byte(bad1+"\n{\"eventTimestamp\":\"2026-11-20T08:00:00Z\"}\n"+bad2), received)
			return err
		},
		"event": func() error {
			_, err := d.Array([]byte("["+bad1+`,{"eventTimestamp":"2026-11-20T08:00:00Z"},`+bad2+"]"), received)
			return err
		},
	} {
		var bad *event.BatchError
		if err := decode(); !errors.As(err, &bad) || len(bad.Lines) != len(want) {
			t.Fatalf("%s: %v", unit, err)
		}
		for i, w := range want {
			if got := fmt.Sprintf("%d: %s", bad.Lines[i].Line, bad.Lines[i].Reason); !strings.HasPrefix(got, w) {
				t.Errorf("%s problem %d: %q, want %q", unit, i, got, w)
			}
		}
	}
}

// An event over MaxEventBytes is refused with the same words in NDJSON and in a JSON array, and
// one just under it is accepted in both.
func TestOneEventSizeLimit(t *testing.T) {
	sized := func(size int) string {
		head := `{"eventTimestamp":"2026-11-20T08:00:00Z","auditPayload":{"blob":"`
		return head + strings.Repeat("a", size-len(head)-3) + `"}}`
	}
	small, large := sized(event.MaxEventBytes), sized(event.MaxEventBytes+1)
	var d event.Decoder
	if _, err := d.NDJSON([]byte(small+"\n"+small), received); err != nil {
		t.Fatalf("NDJSON at the limit: %.200v", err)
	}
	if _, err := d.Array([]byte("["+small+",\n "+small+"]"), received); err != nil {
		t.Fatalf("array at the limit: %.200v", err)
	}
	want := fmt.Sprintf("2: event exceeds %d bytes", event.MaxEventBytes)
	for name, decode := range map[string]func() error{
		"NDJSON":        func() error { _, err := d.NDJSON([]byte(small+"\n"+large), received); return err },
		"array":         func() error { _, err := d.Array([]byte("["+small+","+large+"]"), received); return err },
		"array, 10 MiB": func() error { _, err := d.Array([]byte("[{},"+sized(10<<20)+"]"), received); return err },
	} {
		if err := decode(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %.300v, want %q", name, err, want)
		}
	}
}

func TestManyBadLinesAreBounded(t *testing.T) {
	var d event.Decoder
	_, err := d.NDJSON(bytes.Repeat([]byte("{}\n"), 1000), received)
	var bad *event.BatchError
	if !errors.As(err, &bad) || len(bad.Lines) != 100 || bad.More != 900 || !strings.Contains(err.Error(), "and 900 more") {
		t.Fatalf("err = %.200v", err)
	}
}

func TestRecordsAreCorruptionChecked(t *testing.T) {
	var d event.Decoder
	b, err := d.NDJSON(eventtest.Sample(1, received), received)
	if err != nil {
		t.Fatal(err)
	}
	rec := b.Record(0)
	for _, broken := range [][]byte{nil, rec[:10], rec[:len(rec)-1], append(append([]byte{}, rec...), 0), append([]byte{9}, rec[1:]...)} {
		if _, err := event.Decode(1, broken); !errors.Is(err, event.ErrCorrupt) {
			t.Errorf("decode of a broken record (len %d): %v", len(broken), err)
		}
	}
}

func TestEncodeMatchesDecode(t *testing.T) {
	e := decodeOne(t, string(eventtest.Sample(3, received)))
	again, err := event.Decode(7, event.Encode(e))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, e), mustJSON(t, again); !bytes.Equal(a, b) {
		t.Fatalf("Encode/Decode changed the event:\n%s\n%s", a, b)
	}
}

// FuzzDecode: any input either decodes into records that round-trip, or is refused with line
// errors; it never panics.
func FuzzDecode(f *testing.F) {
	f.Add(eventtest.Sample(1, received))
	f.Add([]byte(`{"eventTimestamp":"2026-11-20T08:00:00Z","x":{"y":[1,{"z":null}]}}` + "\n" + `{"eventTimestamp":"2026-11-20T08:00:00.5+02:00"}`))
	f.Add([]byte(`[{"eventTimestamp":"2026-11-20T08:00:00Z"}]`))
	f.Add([]byte(`{"eventTimestamp":"2026-11-20T08:00:00Z","actor":{"id":"\u00e9","k":1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var d event.Decoder
		for _, decode := range []func([]byte, time.Time) (*event.Batch, error){d.NDJSON, d.Array} {
			b, err := decode(body, received)
			if err != nil {
				var bad *event.BatchError
				if !errors.As(err, &bad) || len(bad.Lines) == 0 {
					t.Fatalf("error %v is not a BatchError with lines", err)
				}
				continue
			}
			for i := range b.Len() {
				e, err := event.Decode(uint64(i), b.Record(i))
				if err != nil {
					t.Fatalf("record %d does not decode: %v", i, err)
				}
				for _, raw := range []json.RawMessage{e.Targets, e.RelatedResources, e.AuditPayload, e.Additional} {
					if raw != nil && !json.Valid(raw) {
						t.Fatalf("stored invalid JSON %q", raw)
					}
				}
			}
		}
	})
}
