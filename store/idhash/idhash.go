// Package idhash hashes event ids for the engines' in-memory tables of ids (bbolt's open segment
// and fingerprints, PostgreSQL's replica index).
package idhash

import "encoding/binary"

// Sum hashes an id to 64 bits in which every bit of the id moves every bit: ids are random or
// time-ordered UUIDs, whose raw bytes would crowd a table's slots.
func Sum(id [16]byte) uint64 {
	return mix64(binary.LittleEndian.Uint64(id[:8]) ^ mix64(binary.LittleEndian.Uint64(id[8:])))
}

// mix64 is splitmix64's finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ (x >> 31)
}
