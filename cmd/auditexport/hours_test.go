package main

import (
	"path"
	"testing"
	"time"

	"github.com/auditexport/auditexport/event/eventtest"
	"github.com/auditexport/auditexport/internal/exporttest"
	"github.com/auditexport/auditexport/internal/s3test"
	"github.com/auditexport/auditexport/internal/testserver"
)

// TestInterleavedHoursMakeOneObjectEach: 1,800 events whose event times cycle through nine hours,
// more than the eight files a job keeps open, once became 1,801 objects. Now each hour partition
// gets one object, and every event is exported once.
func TestInterleavedHoursMakeOneObjectEach(t *testing.T) {
	srv := s3test.Require(t)
	bucket := srv.NewBucket(t)
	key, secret := srv.NewUser(t, s3test.PutOnlyPolicy(bucket))
	server := testserver.Start(t, testserver.Options{})
	id := createOn(server, srv.Endpoint, bucket, key, secret)
	const events, hours = 1800, 9
	start := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	var body []byte
	for i := range events {
		body = append(body, eventtest.NDJSON(i, 1, start.Add(time.Duration(i%hours)*time.Hour+time.Duration(i)*time.Second), 0)...)
	}
	ingestNDJSON(t, server, body)

	var out struct{ RunExportNow exportJob }
	server.MustGraphQL(server.AdminToken, `mutation($id: ID!) { runExportNow(id: $id) { id status eventCount objectCount } }`, map[string]any{"id": id}, &out)
	// The configuration's own creation event is exported too, in the hour it was created.
	if job := out.RunExportNow; job.Status != "SUCCEEDED" || job.EventCount != events+1 {
		t.Fatalf("export: %+v", job)
	}
	keys := srv.Keys(t, bucket, "audit/year=")
	perHour := map[string]int{}
	for _, k := range keys {
		perHour[path.Dir(k)]++
	}
	if len(perHour) != hours+1 || len(keys) != hours+1 {
		t.Fatalf("%d objects in %d hour partitions, want one in each of %d: %v", len(keys), len(perHour), hours+1, perHour)
	}
	seen := exporttest.CountIDs(t, srv, bucket, "audit", id)
	for i := range events {
		if n := seen[eventtest.ID(i).String()]; n != 1 {
			t.Fatalf("event %d exported %d times", i, n)
		}
	}
}
