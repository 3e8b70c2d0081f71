package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/bytedance/sonic"
	gojson "github.com/goccy/go-json"
	"github.com/google/uuid"

	"github.com/auditexport/auditexport/event/eventtest"
)

// unmarshaler is encoding/json's Unmarshal, or a library's drop-in replacement for it.
type unmarshaler func(data []byte, v any) error

// stdDecodeNDJSON is the same decoding as Decoder.NDJSON written against encoding/json's API, kept
// as the reference the fast decoder was chosen against (BenchmarkDecode): with json.Unmarshal, or
// with a drop-in replacement (goccy/go-json, bytedance/sonic).
func stdDecodeNDJSON(body []byte, received time.Time, unmarshal unmarshaler) (*Batch, error) {
	batch := &Batch{}
	for line := range bytes.Lines(body) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if err := unmarshal(line, &obj); err != nil {
			return nil, err
		}
		var fields [numFields][]byte
		var id uuid.UUID
		var eventMicros int64
		recvMicros := received.UnixMicro()
		var additional map[string]json.RawMessage
		for k, v := range obj {
			str := func(f Field) error {
				var s *string
				if err := unmarshal(v, &s); err != nil {
					return err
				}
				if s != nil {
					fields[f] = []byte(*s)
				}
				return nil
			}
			var err error
			switch k {
			case "id":
				var s string
				if err = unmarshal(v, &s); err == nil {
					id, err = uuid.Parse(s)
				}
			case "eventTimestamp", "receivedTimestamp":
				var t time.Time
				if err = unmarshal(v, &t); err == nil {
					if k == "eventTimestamp" {
						eventMicros = t.UnixMicro()
					} else {
						recvMicros = t.UnixMicro()
					}
				}
			case "tenantId":
				err = str(FieldTenantID)
			case "action":
				err = str(FieldAction)
			case "actionStatus":
				err = str(FieldActionStatus)
			case "actorIp":
				err = str(FieldActorIP)
			case "targetType":
				err = str(FieldTargetType)
			case "requestId":
				err = str(FieldRequestID)
			case "sessionId":
				err = str(FieldSessionID)
			case "actor":
				var a struct{ ID, Name, Type, IdentityProvider, ProfileID string }
				if err = unmarshal(v, &a); err == nil {
					fields[FieldActorID], fields[FieldActorName], fields[FieldActorType] = []byte(a.ID), []byte(a.Name), []byte(a.Type)
					fields[FieldActorIdentityProvider], fields[FieldActorProfileID] = []byte(a.IdentityProvider), []byte(a.ProfileID)
				}
			case "targets":
				fields[FieldTargets] = compact(v)
			case "relatedResources":
				fields[FieldRelatedResources] = compact(v)
			case "auditPayload":
				fields[FieldAuditPayload] = compact(v)
			default:
				if additional == nil {
					additional = map[string]json.RawMessage{}
				}
				additional[k] = v
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
		}
		if additional != nil {
			fields[FieldAdditional], _ = json.Marshal(additional)
		}
		batch.add(appendRecord(nil, id, eventMicros, recvMicros, &fields))
	}
	return batch, nil
}

func compact(v json.RawMessage) []byte {
	var b bytes.Buffer
	json.Compact(&b, v)
	return b.Bytes()
}

// BenchmarkDecode compares the decoders on 1,000 typical events; events/s is the figure.
// "service" is the Decoder as the server uses it (reused; the one-pass fast path, fastjson for
// what it declines), "fastjson" the Decoder's general path alone (the decoder before the fast
// path), the others the same decoding written against encoding/json's API.
func BenchmarkDecode(b *testing.B) {
	body := eventtest.NDJSON(0, 1000, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), time.Second)
	now := time.Now()
	var service Decoder
	general := Decoder{generalOnly: true}
	decoders := map[string]func() (*Batch, error){
		"service":       func() (*Batch, error) { return service.NDJSON(body, now) },
		"fastjson":      func() (*Batch, error) { return general.NDJSON(body, now) },
		"encoding-json": func() (*Batch, error) { return stdDecodeNDJSON(body, now, json.Unmarshal) },
		"goccy-go-json": func() (*Batch, error) { return stdDecodeNDJSON(body, now, gojson.Unmarshal) },
		"sonic":         func() (*Batch, error) { return stdDecodeNDJSON(body, now, sonic.Unmarshal) },
	}
	for name, decode := range decoders {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := decode(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// The benchmark compares like with like: every candidate decodes to the same records.
func TestReferenceDecodersAgree(t *testing.T) {
	body := eventtest.NDJSON(0, 50, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), time.Second)
	now := time.Now()
	var d Decoder
	fast, err := d.NDJSON(body, now)
	if err != nil {
		t.Fatal(err)
	}
	for name, unmarshal := range map[string]unmarshaler{"encoding/json": json.Unmarshal, "goccy/go-json": gojson.Unmarshal, "sonic": sonic.Unmarshal} {
		ref, err := stdDecodeNDJSON(body, now, unmarshal)
		if err != nil || ref.Len() != fast.Len() {
			t.Fatalf("%s: %v, %d records", name, err, ref.Len())
		}
		for i := range fast.Len() {
			a, _ := Decode(0, fast.Record(i))
			c, _ := Decode(0, ref.Record(i))
			ja, _ := json.Marshal(a)
			jc, _ := json.Marshal(c)
			if !bytes.Equal(ja, jc) {
				t.Fatalf("%s: event %d differs:\n%s\n%s", name, i, ja, jc)
			}
		}
	}
}
