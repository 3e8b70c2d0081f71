package postgres

// ChunkRecords returns the records of a chunk's data (event_chunks.data), for tests that read the
// database directly.
func ChunkRecords(first, last uint64, data []byte) ([][]byte, error) {
	var c chunkDecoder
	var out [][]byte
	_, err := c.each(first, last, data, 0, func(_ uint64, r []byte) bool {
		out = append(out, append([]byte(nil), r...))
		return true
	})
	return out, err
}
