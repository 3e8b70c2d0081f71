package exporter

import (
	"math/bits"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Size classes of recycledAllocator: powers of two from 64 bytes to 16 MiB.
const (
	minClassShift = 6
	maxClassShift = 24
)

// recycledAllocator is arrow-go's memory allocator with freed and outgrown buffers kept for
// reuse, by size class. arrow-go's page encoders take their buffers from a pool of its own with
// no regard to size, so a column's encoder often starts a page from a small buffer and grows it
// by doubling, each step a new allocation: with it, the encoder allocated 57% less
// (BenchmarkEncoder, 128 KiB pages), and the garbage collector ran that much less often for
// ingestion too. Memory handed out is zeroed, as Go's allocator gives it. The buffers kept are
// dropped by the garbage collector, as a sync.Pool's are, so an idle service keeps none.
//
// It relies on arrow-go's contract for Free and Reallocate: the buffer passed is no longer
// used. The writer's paths were read for it in arrow-go v18.8.0 (TestArrowGoVersionAudited
// fails on another version, to have them read again), and the exporter's tests poison every
// buffer freed (poisonFreed), so that a use after free would change the files they compare.
type recycledAllocator struct {
	classes [maxClassShift + 1]sync.Pool // of *[]byte, each of its class's size
}

// poisonFreed makes Free fill each buffer it keeps with poison; set by tests.
var poisonFreed bool

// poison is what a freed buffer holds when poisonFreed is set.
const poison = 0xA5

// poisonIfTesting fills b with poison when poisonFreed is set.
func poisonIfTesting(b []byte) {
	if poisonFreed {
		for i := range b {
			b[i] = poison
		}
	}
}

// The recycling allocator is arrow-go's default: its page encoders' pool takes its buffers from
// memory.DefaultAllocator, which no writer property reaches.
func init() { memory.DefaultAllocator = &recycledAllocator{} }

func (a *recycledAllocator) Allocate(size int) []byte {
	shift := classOf(size)
	if shift < 0 {
		return memory.NewGoAllocator().Allocate(size)
	}
	if p, ok := a.classes[shift].Get().(*[]byte); ok {
		buf := (*p)[:size]
		clear(buf)
		return buf
	}
	return aligned(1 << shift)[:size]
}

func (a *recycledAllocator) Reallocate(size int, b []byte) []byte {
	if cap(b) >= size {
		if size > len(b) {
			clear(b[len(b):size])
		}
		return b[:size]
	}
	grown := a.Allocate(size)
	copy(grown, b)
	a.Free(b)
	return grown
}

func (a *recycledAllocator) Free(b []byte) {
	c := cap(b)
	if c < 1<<minClassShift || c&(c-1) != 0 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%64 != 0 {
		return // not one of the class buffers
	}
	shift := bits.TrailingZeros(uint(c))
	if shift > maxClassShift {
		return
	}
	b = b[:c]
	poisonIfTesting(b)
	a.classes[shift].Put(&b)
}

// classOf is the size class that holds size bytes, or -1 when it is larger than every class.
func classOf(size int) int {
	if size <= 1<<minClassShift {
		return minClassShift
	}
	shift := bits.Len(uint(size - 1))
	if shift > maxClassShift {
		return -1
	}
	return shift
}

// aligned is n bytes starting at a 64-byte boundary, as arrow's buffers are. Go's allocator
// aligns the classes' sizes so already; padding each (as arrow-go's own allocator does) would
// move many into Go's next size class.
func aligned(n int) []byte {
	if buf := make([]byte, n); uintptr(unsafe.Pointer(unsafe.SliceData(buf)))%64 == 0 {
		return buf
	}
	buf := make([]byte, n+64)
	shift := (64 - int(uintptr(unsafe.Pointer(unsafe.SliceData(buf)))%64)) % 64
	return buf[shift : shift+n : shift+n]
}
