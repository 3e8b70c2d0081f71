package exporter

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/store"
)

// exportMetrics are the exporter's Prometheus collectors, labelled by configuration id.
type exportMetrics struct {
	events, bytes, objects, failures, skipped *prometheus.CounterVec
	lag                                       *lagCollector
}

func newExportMetrics(st ExportStore, now func() time.Time) *exportMetrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"configuration"})
	}
	return &exportMetrics{
		events:   counter("auditexport_export_events_total", "Events exported."),
		bytes:    counter("auditexport_export_bytes_total", "Bytes of Parquet uploaded."),
		objects:  counter("auditexport_export_objects_total", "Objects uploaded."),
		failures: counter("auditexport_export_failures_total", "Failed export attempts."),
		skipped:  counter("auditexport_export_skipped_events_total", "Events never exported because they left the buffer first (the configuration was disabled, or they passed the buffer's age limit)."),
		lag:      &lagCollector{store: st, now: now},
	}
}

// exported counts a completed job.
func (m *exportMetrics) exported(job store.ExportJob) {
	m.events.WithLabelValues(job.ConfigID).Add(float64(job.EventCount))
	m.bytes.WithLabelValues(job.ConfigID).Add(float64(job.Bytes))
	m.objects.WithLabelValues(job.ConfigID).Add(float64(job.ObjectCount))
	m.skipped.WithLabelValues(job.ConfigID).Add(float64(job.SkippedEvents))
}

// Collectors are the exporter's metrics, for the server's registry.
func (x *Exporter) Collectors() []prometheus.Collector {
	m := x.metrics
	return []prometheus.Collector{m.events, m.bytes, m.objects, m.failures, m.skipped, m.lag}
}

var (
	lagEventsDesc = prometheus.NewDesc("auditexport_export_lag_events",
		"Events received but not yet exported, per enabled configuration.", []string{"configuration"}, nil)
	lagSecondsDesc = prometheus.NewDesc("auditexport_export_lag_seconds",
		"Age of the oldest event not yet exported, per enabled configuration (0 when none waits).", []string{"configuration"}, nil)
)

// lagCollector computes each enabled configuration's export lag when scraped.
type lagCollector struct {
	store ExportStore
	now   func() time.Time
}

func (l *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagEventsDesc
	ch <- lagSecondsDesc
}

func (l *lagCollector) Collect(ch chan<- prometheus.Metric) {
	configs, err := l.store.Configurations(context.Background())
	if err != nil {
		return
	}
	for _, c := range configs {
		if !c.Enabled {
			continue
		}
		pending, err := l.store.PendingEvents(context.Background(), c.Cursor)
		if err != nil {
			return
		}
		waiting := float64(pending)
		age := 0.0
		l.store.ReadEvents(context.Background(), c.Cursor, 1, func(_ uint64, rec []byte) bool {
			var r event.Record
			if r.Parse(rec) == nil {
				age = max(0, l.now().Sub(time.UnixMicro(r.RecvMicros)).Seconds())
			}
			return false
		})
		ch <- prometheus.MustNewConstMetric(lagEventsDesc, prometheus.GaugeValue, waiting, c.ID)
		ch <- prometheus.MustNewConstMetric(lagSecondsDesc, prometheus.GaugeValue, age, c.ID)
	}
}
