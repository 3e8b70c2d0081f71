package server

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/auditexport/auditexport/event"
	"github.com/auditexport/auditexport/graph"
	"github.com/auditexport/auditexport/store"
)

// EventsPath is where platforms send audit events.
const EventsPath = "/api/audit/events"

// ingestion is what one events request needs in memory beyond its handler: the body, the
// decoder and the batch of records, kept across requests (the profiles: reading and decoding
// bodies into fresh memory was most of ingestion's allocation, and so of its garbage collection).
type ingestion struct {
	body  []byte
	dec   event.Decoder
	batch event.Batch
}

var ingestions = sync.Pool{New: func() any { return new(ingestion) }}

// maxPooledBody: an ingestion that held a larger body is dropped rather than kept, so that a
// few large requests do not pin their memory.
const maxPooledBody = 4 << 20

// ingest serves POST /api/audit/events: NDJSON or a JSON array, optionally gzip-compressed,
// accepted whole (202, once durable) or rejected whole (4xx naming each bad event, or 503 when
// the buffer or the disk cannot keep it).
func (s *Server) ingest() http.Handler {
	limit := s.cfg.MaxEventsBodyBytes
	tooLarge := fmt.Sprintf("request body exceeds %d bytes", limit)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		ndjson := mediaType == "application/x-ndjson" || mediaType == "application/jsonl" || mediaType == "application/x-jsonlines"
		if err != nil || !ndjson && mediaType != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, graph.CodeBadRequest,
				"Content-Type must be application/x-ndjson (one event per line) or application/json (an array of events)")
			return
		}
		if r.ContentLength > limit {
			writeError(w, http.StatusRequestEntityTooLarge, graph.CodeBadRequest, tooLarge)
			return
		}
		var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
		switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
		case "", "identity":
		case "gzip":
			gz, err := gzip.NewReader(body)
			if err != nil {
				writeError(w, http.StatusBadRequest, graph.CodeBadRequest, "the body is not valid gzip: "+err.Error())
				return
			}
			defer gz.Close()
			body = gz
		default:
			writeError(w, http.StatusUnsupportedMediaType, graph.CodeBadRequest, "Content-Encoding must be gzip or absent, not "+enc)
			return
		}
		in := ingestions.Get().(*ingestion)
		defer func() {
			if cap(in.body) <= maxPooledBody && cap(in.batch.Data) <= maxPooledBody {
				ingestions.Put(in) // once the batch is stored or refused: nothing refers to it then
			}
		}()
		// The limit also bounds the decompressed body: a small gzip must not expand unbounded.
		var data []byte
		data, err = readAll(io.LimitReader(body, limit+1), in.body[:0], r.ContentLength)
		in.body = data
		var maxBytes *http.MaxBytesError
		switch {
		case errors.As(err, &maxBytes) || int64(len(data)) > limit:
			writeError(w, http.StatusRequestEntityTooLarge, graph.CodeBadRequest, tooLarge+" (decompressed)")
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, graph.CodeBadRequest, "could not read the body: "+bodyReadError(err))
			return
		}

		received := time.Now()
		batch := &in.batch
		if ndjson {
			err = in.dec.NDJSONInto(batch, data, received)
		} else {
			err = in.dec.ArrayInto(batch, data, received)
		}
		var bad *event.BatchError
		if errors.As(err, &bad) {
			writeBatchError(w, bad)
			return
		}

		res, err := s.store.AppendEvents(r.Context(), batch)
		switch {
		case s.disk.wrote(err):
			s.log.Error("append events: the data directory's disk is full", "error", err)
			w.Header().Set("Retry-After", "30")
			writeError(w, http.StatusServiceUnavailable, "DISK_FULL",
				"the server's disk is full; nothing of this batch was stored, retry later")
			return
		case errors.Is(err, store.ErrBufferFull):
			w.Header().Set("Retry-After", "30")
			writeError(w, http.StatusServiceUnavailable, "BUFFER_FULL",
				"the event buffer is full until exports catch up; nothing of this batch was stored, retry later")
			return
		case errors.Is(err, store.ErrClosed):
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusServiceUnavailable, "SHUTTING_DOWN", "the server is shutting down; nothing of this batch was stored, retry")
			return
		case errors.Is(err, store.ErrUnavailable):
			// The database is out of reach, or its commit's outcome unknown: never a 202 then.
			writeUnavailable(w)
			return
		case err != nil:
			s.log.Error("append events", "error", err)
			writeError(w, http.StatusInternalServerError, graph.CodeInternal, "internal server error; nothing of this batch was stored")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "{\"accepted\":%d,\"duplicates\":%d}\n", res.Accepted, res.Duplicates)
	})
}

// readAll is io.ReadAll into buf, first grown to hold size bytes (the Content-Length, -1 when
// unknown) and one more, so that a body of the announced size is read without growing buf.
func readAll(r io.Reader, buf []byte, size int64) ([]byte, error) {
	if size >= 0 && size < 1<<30 {
		buf = slices.Grow(buf, int(size)+512)
	}
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 1)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// bodyReadError describes a failed read of the body without internal detail.
func bodyReadError(err error) string {
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the gzip stream is corrupt or truncated"
	}
	return "the connection failed while reading"
}

// writeBatchError answers 400 with one error per problem of each bad event, each naming its line.
func writeBatchError(w http.ResponseWriter, bad *event.BatchError) {
	errs := make([]map[string]any, 0, len(bad.Lines)+1)
	for _, l := range bad.Lines {
		errs = append(errs, map[string]any{
			"message":    fmt.Sprintf("%s %d: %s", bad.Unit, l.Line, l.Reason),
			"extensions": map[string]any{"code": graph.CodeBadUserInput, bad.Unit: l.Line},
		})
	}
	if bad.More > 0 {
		errs = append(errs, map[string]any{
			"message":    fmt.Sprintf("and %d more problems", bad.More),
			"extensions": map[string]any{"code": graph.CodeBadUserInput},
		})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]any{"errors": errs, "accepted": 0})
}
