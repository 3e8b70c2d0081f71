package exporter

import (
	"testing"

	"github.com/auditexport/auditexport/exporter/destination"
)

// LoopbackTransport is the transport of tests: their servers (MinIO, Azurite, fakes) listen on
// 127.0.0.1, a private address the service reaches only when its operator allows it.
func LoopbackTransport(tb testing.TB) destination.TransportConfig {
	tb.Helper()
	p, err := destination.ParseAddressPolicy("127.0.0.1")
	if err != nil {
		tb.Fatal(err)
	}
	return destination.TransportConfig{Addresses: p}
}
