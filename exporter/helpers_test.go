package exporter

import (
	"flag"
	"os"
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

// TestMain poisons arrow-go's buffers once freed, so that a buffer used after arrow-go gave it
// back to the recycling allocator changes the files the tests compare; benchmarks run as the
// service does, without.
func TestMain(m *testing.M) {
	flag.Parse()
	poisonFreed = flag.Lookup("test.bench").Value.String() == ""
	os.Exit(m.Run())
}
