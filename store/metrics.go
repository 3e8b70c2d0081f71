package store

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus collectors.
type metrics struct {
	accepted, duplicates, dropped prometheus.Counter
	groupSize                     prometheus.Histogram
	gauges                        []prometheus.Collector
}

func newMetrics() *metrics {
	return &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditexport_events_accepted_total", Help: "Events stored in the buffer."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditexport_events_duplicate_total", Help: "Events not stored again because their id was already buffered."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditexport_events_dropped_total", Help: "Events removed by the buffer's age limit before every enabled configuration exported them."}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "auditexport_buffer_commit_batches", Help: "Batches committed together in one transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64}}),
	}
}

// watch adds gauges that read the buffer's state at scrape time.
func (m *metrics) watch(s *Store) {
	gauge := func(name, help string, value func(BufferStatus) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			st, _ := s.BufferStatus(context.Background())
			return value(st)
		})
	}
	m.gauges = []prometheus.Collector{
		gauge("auditexport_buffer_events", "Events in the buffer.", func(b BufferStatus) float64 { return float64(b.Events) }),
		gauge("auditexport_buffer_bytes", "Encoded bytes of the events in the buffer.", func(b BufferStatus) float64 { return float64(b.Bytes) }),
		gauge("auditexport_buffer_segments", "Segments in the buffer.", func(b BufferStatus) float64 { return float64(b.Segments) }),
	}
}

// Collectors are the store's metrics, for the server's registry.
func (s *Store) Collectors() []prometheus.Collector {
	m := s.metrics
	return append([]prometheus.Collector{m.accepted, m.duplicates, m.dropped, m.groupSize}, m.gauges...)
}
