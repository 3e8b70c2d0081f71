// Package eventtest makes realistic audit events for tests and benchmarks.
package eventtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Sample is the JSON of a typical Universal Audit Model event: a query against a data source,
// about 700 bytes. i varies the names and fixes the id (the same i, the same event); at is the
// event time.
func Sample(i int, at time.Time) []byte {
	e := map[string]any{
		"id":             ID(i).String(),
		"tenantId":       "tenant-" + fmt.Sprint(i%7),
		"action":         []string{"QUERY", "LOGIN", "POLICY_CHANGE", "DATA_SOURCE_CREATE"}[i%4],
		"actionStatus":   []string{"SUCCESS", "FAILURE"}[i%9/8],
		"eventTimestamp": at.UTC().Format(time.RFC3339Nano),
		"actor": map[string]any{
			"id": fmt.Sprintf("user-%d@example.com", i%1000), "name": fmt.Sprintf("User %d", i%1000),
			"type": "USER", "identityProvider": "okta", "profileId": fmt.Sprint(1000 + i%1000),
		},
		"actorIp":    fmt.Sprintf("10.%d.%d.%d", i%250, (i/250)%250, i%200+1),
		"targetType": "DATA_SOURCE",
		"targets": []map[string]any{
			{"id": fmt.Sprint(i % 500), "name": fmt.Sprintf("warehouse.sales.orders_%d", i%500), "type": "DATA_SOURCE"},
		},
		"relatedResources": []map[string]any{{"id": "42", "name": "finance", "type": "PROJECT"}},
		"auditPayload": map[string]any{
			"type": "QueryAuditPayload", "version": 1,
			"query":        fmt.Sprintf("SELECT order_id, amount FROM sales.orders_%d WHERE region = 'emea' LIMIT %d", i%500, i%100),
			"rowsReturned": i % 1000, "durationMs": i % 5000,
		},
		"requestId": uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "req-%d", i)).String(),
		"sessionId": fmt.Sprintf("session-%d", i%300),
	}
	data, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return data
}

// ID is the id of Sample(i, …).
func ID(i int) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "event-%d", i)) }

// NDJSON is n sample events, one per line, with event times spread from start by step.
func NDJSON(first, n int, start time.Time, step time.Duration) []byte {
	var out []byte
	for i := first; i < first+n; i++ {
		out = append(out, Sample(i, start.Add(time.Duration(i-first)*step))...)
		out = append(out, '\n')
	}
	return out
}

// Large is NDJSON of n events, one a second from start, whose auditPayload carries a string of
// size copies of fill, as sent (HTML characters not escaped): events near the 1 MiB limit.
func Large(start time.Time, n, size int, fill string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b) // one event per line
	enc.SetEscapeHTML(false)
	for i := range n {
		enc.Encode(map[string]any{
			"eventTimestamp": start.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
			"action":         "QUERY",
			"auditPayload":   map[string]any{"type": "QueryAuditPayload", "version": 1, "query": strings.Repeat(fill, size)},
		})
	}
	return b.Bytes()
}

// Bodies makes NDJSON bodies of n sample events with ids never used before, cheaply: one
// template, its ids rewritten in place. Safe for concurrent use.
type Bodies struct {
	template []byte
	idAt     []int // offsets of the 12 hex digits ending each id
	next     atomic.Uint64
}

// NewBodies prepares bodies of n events.
func NewBodies(n int) *Bodies {
	b := &Bodies{}
	for i := range n {
		line := Sample(i, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Second))
		id := ID(i).String()
		at := bytes.Index(line, []byte(id))
		b.idAt = append(b.idAt, len(b.template)+at+len(id)-12)
		b.template = append(append(b.template, line...), '\n')
	}
	return b
}

// Next returns a body whose ids differ from every earlier body's.
func (b *Bodies) Next() []byte {
	body := bytes.Clone(b.template)
	for _, at := range b.idAt {
		copy(body[at:at+12], fmt.Sprintf("%012x", b.next.Add(1)))
	}
	return body
}
