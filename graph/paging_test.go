package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// A page of auditEvents ends early, saying there is more, once it has read 64 MiB of events
// outside the asked time range or holds 8 MiB of events: a request's work and memory stay
// bounded however large the events and the buffer, and paging on finds every event.
func TestAuditEventsPagesEndEarly(t *testing.T) {
	day := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var st eventStore
	st.add(70, 1<<20, "x", day.AddDate(0, 0, -1)) // outside the range
	st.add(12, 900<<10, "y", day)
	srv := NewHandler(HandlerConfig{Resolver: &Resolver{Store: st}})
	var pages []int
	after := ""
	for range 10 {
		status, body := post(srv, context.Background(), `{ auditEvents(first: 100, from: "2020-01-01T00:00:00Z"`+after+`) {
			edges { node { id } } pageInfo { endCursor hasNextPage } } }`)
		var resp struct {
			Data struct {
				AuditEvents struct {
					Edges    []struct{ Node struct{ ID string } }
					PageInfo struct {
						EndCursor   string
						HasNextPage bool
					}
				}
			}
		}
		if err := json.Unmarshal([]byte(body), &resp); err != nil || status != http.StatusOK {
			t.Fatalf("%d %v %.300s", status, err, body)
		}
		page := resp.Data.AuditEvents
		pages = append(pages, len(page.Edges))
		if !page.PageInfo.HasNextPage {
			break
		}
		after = `, after: "` + page.PageInfo.EndCursor + `"`
	}
	// 64 of the 1 MiB events outside the range; the other 6 and 10 of the range (8.8 MiB); the
	// last 2.
	if fmt.Sprint(pages) != "[0 10 2]" {
		t.Fatalf("pages of %v events, want [0 10 2]", pages)
	}
}
