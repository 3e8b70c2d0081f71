package exporter

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// TestRecycledAllocator: buffers come zeroed and 64-byte aligned, of the size asked for, whether
// new or reused; a reallocation keeps the contents; buffers freed are reused by their class;
// sizes past the largest class are allocated as arrow-go's own allocator does.
func TestRecycledAllocator(t *testing.T) {
	var a recycledAllocator
	check := func(b []byte, size int) {
		t.Helper()
		if len(b) != size {
			t.Fatalf("len %d, want %d", len(b), size)
		}
		if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%64 != 0 {
			t.Fatalf("a buffer of %d bytes is not 64-byte aligned", size)
		}
		zeros(t, b)
	}
	reused := 0
	for i := range 100 {
		size := 1000 + i
		b := a.Allocate(size)
		check(b, size)
		first := unsafe.SliceData(b)
		for j := range b {
			b[j] = 0xFF
		}
		a.Free(b)
		if poisonFreed && b[0] != poison {
			t.Fatalf("a freed buffer holds %#x, want the tests' poison", b[0])
		}
		again := a.Allocate(size + 20) // the same class
		check(again, size+20)
		if unsafe.SliceData(again) == first {
			reused++
		}
		a.Free(again)
	}
	if reused == 0 { // sync.Pool may drop some (always some under the race detector), not all
		t.Error("no buffer freed was reused")
	}

	small := a.Allocate(100)
	for i := range small {
		small[i] = byte(i)
	}
	grown := a.Reallocate(5000, small)
	if len(grown) != 5000 || cap(grown) != 8192 {
		t.Fatalf("reallocated to len %d cap %d, want 5000 in the class of 8192", len(grown), cap(grown))
	}
	for i := range 100 {
		if grown[i] != byte(i) {
			t.Fatalf("byte %d is %d after reallocation, want %d", i, grown[i], i)
		}
	}
	zeros(t, grown[100:])
	if same := a.Reallocate(6000, grown); unsafe.SliceData(same) != unsafe.SliceData(grown) || len(same) != 6000 {
		t.Fatal("a reallocation within the buffer's capacity moved it")
	}

	huge := a.Allocate(1<<maxClassShift + 1)
	check(huge, 1<<maxClassShift+1)
	a.Free(huge) // not a class buffer: left to the garbage collector
}

func zeros(t *testing.T, b []byte) {
	t.Helper()
	if i := bytes.IndexFunc(b, func(r rune) bool { return r != 0 }); i >= 0 {
		t.Fatalf("a buffer of %d bytes holds %#x at %d, want zeros", len(b), b[i], i)
	}
}

// TestArrowGoVersionAudited fails when arrow-go changes version: recycledAllocator relies on
// every Free and Reallocate of the Parquet writer's paths being given a buffer no longer used,
// which was checked by reading them in this version. Read them again (memory.Buffer,
// parquet/internal/encoding's pooled buffers and dictionary encoders, internal/hashing's memo
// tables, parquet/file's page building), then change the version here.
func TestArrowGoVersionAudited(t *testing.T) {
	const audited = "github.com/apache/arrow-go/v18 v18.8.0"
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mod)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/apache/arrow-go/v18" {
			if got := f[0] + " " + f[1]; got != audited {
				t.Fatalf("go.mod requires %s; recycledAllocator was checked against %s", got, audited)
			}
			return
		}
	}
	t.Fatal("go.mod does not require arrow-go")
}
