package bolt

import (
	"bytes"
	"encoding/json"
	"sync"
)

// decodeCache keeps decoded records beside a copy of the bytes they were decoded from, so that
// reading an unchanged record again costs a map lookup and a comparison instead of a JSON
// decode (~10 µs for a configuration): listing 1,000 configurations and their newest jobs
// would otherwise spend 15 ms decoding. A hit is checked against the bytes in the file, so
// the cache can never serve a stale record; it only ever saves work. Bounded: when full it
// starts over.
type decodeCache[T any] struct {
	mu      sync.Mutex
	max     int
	entries map[string]cachedRecord[T]
}

type cachedRecord[T any] struct {
	raw   []byte
	value T
}

func newDecodeCache[T any](max int) *decodeCache[T] {
	return &decodeCache[T]{max: max, entries: map[string]cachedRecord[T]{}}
}

// decode returns the record raw holds, stored under key.
func (c *decodeCache[T]) decode(key, raw []byte) (T, error) {
	c.mu.Lock()
	hit, ok := c.entries[string(key)]
	c.mu.Unlock()
	if ok && bytes.Equal(hit.raw, raw) {
		return hit.value, nil
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, err
	}
	c.mu.Lock()
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[string(key)] = cachedRecord[T]{raw: bytes.Clone(raw), value: v}
	c.mu.Unlock()
	return v, nil
}
