// Package eventtest makes realistic audit events for tests and benchmarks.
package eventtest

import (
	"encoding/json"
	"fmt"
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
