package event

import (
	"bytes"
	"time"

	"github.com/google/uuid"
)

// The fast path of decoding: one pass over an event's JSON that checks it is strict JSON in
// UTF-8 and picks out the envelope's fields as it goes, writing the record straight into the
// batch. It takes the events that need nothing more: the envelope's keys each at most once and
// without escapes, its strings without escapes, every field of the type it must have, an actor
// with only its five fields, timestamps in RFC 3339's usual form. It declines anything else,
// every invalid event included, without a trace; the general path (fastjson) then decodes it,
// naming each problem. Both paths make the same record of an event the fast path takes, byte for
// byte: FuzzFastPathAgrees checks it. Profiles chose this: fastjson validated, parsed into a
// tree and serialized again each raw field, three passes and most of ingestion's CPU.

// fastAppend decodes one event's JSON (one NDJSON line, trimmed) into batch, or reports false
// and leaves batch as it was.
func (d *Decoder) fastAppend(batch *Batch, line []byte, received time.Time) bool {
	s := scanner{b: line}
	var (
		fields              [numFields][]byte
		id                  uuid.UUID
		haveID, haveEventTS bool
		eventMicros         int64
		recvMicros          = received.UnixMicro()
		seen                uint64
	)
	d.scratch = d.scratch[:0]
	d.unknown = d.unknown[:0]
	if !s.consume('{') {
		return false
	}
	s.skipWS()
	for member := 0; ; member++ {
		key, k, f, ok := d.nextKey(&s, member)
		if !ok {
			return false
		}
		if k != keyUnknown {
			if seen&(1<<k) != 0 {
				return false
			}
			seen |= 1 << k
		}
		switch k {
		case keyID:
			v, null, ok := s.stringOrNull()
			if !ok {
				return false
			}
			if !null {
				parsed, err := uuid.ParseBytes(v)
				if err != nil {
					return false
				}
				id, haveID = parsed, true
			}
		case keyEventTimestamp, keyReceivedTimestamp:
			v, null, ok := s.stringOrNull()
			if !ok || null && k == keyEventTimestamp {
				return false
			}
			if !null {
				micros, ok := parseTimestamp(v)
				if !ok {
					return false
				}
				if k == keyEventTimestamp {
					eventMicros, haveEventTS = micros, true
				} else {
					recvMicros = micros
				}
			}
		case keyActor:
			if !s.actor(&fields) {
				return false
			}
		case keyTargets, keyRelatedResources, keyAuditPayload:
			if s.literal("null") {
				break
			}
			open, check := byte('['), (*scanner).container
			if k == keyAuditPayload {
				open, check = '{', (*scanner).payload
			}
			if fields[f], ok = s.raw(open, check, &d.scratch); !ok {
				return false
			}
		case keyUnknown:
			if !plainKey(key) {
				return false
			}
			v, ok := s.anyRaw(&d.scratch)
			if !ok {
				return false
			}
			d.unknown = append(d.unknown, key, v)
		default: // the string fields
			if fields[f], _, ok = s.stringOrNull(); !ok {
				return false
			}
		}
		s.skipWS()
		if !s.consume(',') {
			if !s.consume('}') {
				return false
			}
			break
		}
		s.skipWS()
	}
	if s.skipWS(); s.i != len(line) || !haveEventTS {
		return false
	}
	if !haveID {
		var err error
		if id, err = d.newID(); err != nil {
			return false
		}
	}
	if len(d.unknown) > 0 {
		at := len(d.scratch)
		d.scratch = append(d.scratch, '{')
		for i := 0; i < len(d.unknown); i += 2 {
			if i > 0 {
				d.scratch = append(d.scratch, ',')
			}
			d.scratch = append(d.scratch, '"')
			d.scratch = append(d.scratch, d.unknown[i]...)
			d.scratch = append(d.scratch, '"', ':')
			d.scratch = append(d.scratch, d.unknown[i+1]...)
		}
		d.scratch = append(d.scratch, '}')
		fields[FieldAdditional] = d.scratch[at:]
	}
	batch.Data = appendRecord(batch.Data, id, eventMicros, recvMicros, &fields)
	batch.ends = append(batch.ends, len(batch.Data))
	return true
}

// actor reads the actor: null, or an object of the five fields the record keeps, each a string
// or null. An actor with other fields is left to the general path, which keeps it whole.
func (s *scanner) actor(fields *[numFields][]byte) bool {
	if s.literal("null") {
		return true
	}
	if !s.consume('{') {
		return false
	}
	return s.members(func(key []byte) bool {
		f, known := actorField(key)
		if !known {
			return false
		}
		var ok bool
		fields[f], _, ok = s.stringOrNull()
		return ok
	})
}

// payload skips the auditPayload object, checking it: its keys must be without escapes and its
// type, when present, a string without escapes or null. (The general path reads the type and,
// when the object has none, unescapes its keys: both then come out re-escaped, which the fast
// path does not do.)
func (s *scanner) payload(byte) bool {
	s.i++ // {
	return s.members(func(key []byte) bool {
		if string(key) == "type" {
			_, _, ok := s.stringOrNull()
			return ok
		}
		return s.value()
	})
}

// plainKey reports whether an unknown key is written the same by the general path, which
// quotes it with encoding/json: ASCII without the characters it escapes for HTML.
func plainKey(k []byte) bool {
	for _, c := range k {
		if c >= 0x80 || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// The envelope's keys the fast path knows, each at most once per event.
const (
	keyID = iota
	keyEventTimestamp
	keyReceivedTimestamp
	keyActor
	keyTargets
	keyRelatedResources
	keyAuditPayload
	keyString  // the string fields, keyString+Field
	keyUnknown = 64
)

func keyOf(k []byte) (int, Field) {
	switch string(k) {
	case "id":
		return keyID, 0
	case "eventTimestamp":
		return keyEventTimestamp, 0
	case "receivedTimestamp":
		return keyReceivedTimestamp, 0
	case "actor":
		return keyActor, 0
	case "targets":
		return keyTargets, FieldTargets
	case "relatedResources":
		return keyRelatedResources, FieldRelatedResources
	case "auditPayload":
		return keyAuditPayload, FieldAuditPayload
	}
	if f, _, ok := stringField(k); ok {
		return keyString + int(f), f
	}
	return keyUnknown, 0
}

// maxKnownKeys bounds the keys nextKey remembers: an envelope has about twenty.
const maxKnownKeys = 64

// knownKey is a top-level key as the event before wrote it, compact: `"key":`.
type knownKey struct {
	text []byte
	k    int
	f    Field
}

// nextKey scans the member-th top-level key and its colon, with what keyOf says of it. Events
// of one source write their keys in the same order: a key found where the event before had it,
// written the same, is taken whole without scanning it again.
func (d *Decoder) nextKey(s *scanner, member int) (key []byte, k int, f Field, ok bool) {
	if member < len(d.keys) {
		if known := &d.keys[member]; len(known.text) > 0 && bytes.HasPrefix(s.b[s.i:], known.text) {
			s.i += len(known.text)
			s.skipWS()
			return known.text[1 : len(known.text)-2], known.k, known.f, true
		}
		d.keys = d.keys[:member]
	}
	start := s.i
	if key, ok = s.key(); !ok {
		return nil, 0, 0, false
	}
	k, f = keyOf(key)
	if member < maxKnownKeys {
		// A key written with spaces around its colon keeps its place, empty, so that the keys
		// after it stay where they are. The entry's buffer is reused: only keys before this
		// one have been handed out for the event being decoded.
		var text []byte
		if raw := s.b[start:s.i]; len(raw) == len(key)+3 { // compact: nothing around the colon
			if member < cap(d.keys) {
				text = d.keys[:member+1][member].text[:0]
			}
			text = append(text, raw...)
		}
		d.keys = append(d.keys, knownKey{text: text, k: k, f: f})
	}
	return key, k, f, true
}
