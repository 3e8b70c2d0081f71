package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/auditexport/auditexport/console"
	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/graph"
	"github.com/auditexport/auditexport/internal/buildinfo"
	"github.com/auditexport/auditexport/store"
)

// GraphQLPath is where the control plane is served, as in Immuta's API.
const GraphQLPath = "/api/audit/graphql"

// Store is what the routes need from persistence: all the resolvers need, authentication,
// ingestion and readiness, and the store's metrics.
type Store interface {
	graph.Store
	store.Health
	Collectors() []prometheus.Collector
}

// Server holds the routes of one auditexport instance.
type Server struct {
	cfg      Config
	store    Store
	checker  *exporter.Checker
	exporter *exporter.Exporter
	log      *slog.Logger
	registry *prometheus.Registry
	disk     *diskWatch
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New builds the routes over an open store; checker and exp run the connectivity checks and
// exports that mutations ask for.
func New(cfg Config, st Store, checker *exporter.Checker, exp *exporter.Exporter) *Server {
	cfg.fillDefaults()
	s := &Server{cfg: cfg, store: st, checker: checker, exporter: exp, log: cfg.Logger, registry: prometheus.NewRegistry(),
		disk: &diskWatch{dir: cfg.DataDir, minFree: uint64(cfg.DiskMinFreeBytes)}}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auditexport_http_requests_total", Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "auditexport_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route"})
	build := buildinfo.Read()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "auditexport_build_info", Help: "Always 1; the labels say which build runs (as auditexport version prints).",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "revision_time": build.Time, "goversion": build.GoVersion},
	})
	buildInfo.Set(1)
	s.registry.MustRegister(s.requests, s.latency, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.registry.MustRegister(checker.Collectors()...)
	s.registry.MustRegister(st.Collectors()...)
	s.registry.MustRegister(exp.Collectors()...)
	return s
}

// Handler returns every route. Health checks, the playground and the console's files carry no
// data and need no token; everything else authenticates first.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	allowed := map[string][]string{} // path -> methods, for 405 answers
	handle := func(method, path, label string, h http.Handler) {
		s.route(mux, method+" "+path, label, h)
		allowed[path] = append(allowed[path], method)
	}
	handle("GET", "/healthz", "healthz", http.HandlerFunc(s.healthz))
	handle("GET", "/readyz", "readyz", http.HandlerFunc(s.readyz))
	handle("GET", "/metrics", "metrics",
		s.authenticate(s.require(store.PermissionMetrics, promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))))
	handle("POST", GraphQLPath, "graphql", s.authenticate(s.graphQL()))
	handle("POST", EventsPath, "events", s.authenticate(s.require(store.PermissionIngest, s.ingest())))
	if s.cfg.Playground {
		handle("GET", GraphQLPath, "playground", playground.Handler("auditexport", GraphQLPath))
	}
	for _, path := range console.Paths() {
		if path == "/" {
			path = "/{$}" // exactly "/": other paths stay not found
		}
		handle("GET", path, "console", console.Handler())
	}
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		s.route(mux, path, "method_not_allowed", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, graph.CodeBadRequest, r.Method+" is not allowed on "+r.URL.Path+"; use "+allow)
		}))
	}
	s.route(mux, "/", "not_found", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, graph.CodeNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	}))
	return mux
}

// route registers h with access logging, panic recovery and metrics under a fixed route label.
func (s *Server) route(mux *http.ServeMux, pattern, label string, h http.Handler) {
	mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in http handler", "route", label, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !rec.wroteHeader {
					writeError(rec, http.StatusInternalServerError, graph.CodeInternal, "internal server error")
				}
			}
			code := rec.status()
			s.requests.WithLabelValues(label, fmt.Sprint(code)).Inc()
			s.latency.WithLabelValues(label).Observe(time.Since(start).Seconds())
			s.log.Info("http request", "method", r.Method, "path", r.URL.Path, "route", label,
				"status", code, "duration_ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr)
		}()
		h.ServeHTTP(rec, r)
	}))
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// readyz answers 200 while the server can take events: its store is readable and its data
// directory's disk has room.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.store.Ready(r.Context()); err != nil {
		s.log.Warn("not ready", "error", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "store unavailable\n")
		return
	}
	if problem := s.disk.problem(); problem != "" {
		s.log.Warn("not ready", "error", problem, "data_dir", s.cfg.DataDir)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, problem+"\n")
		return
	}
	io.WriteString(w, "ok\n")
}

// authenticate resolves the bearer token to a principal, or answers 401.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="auditexport"`)
			writeError(w, http.StatusUnauthorized, graph.CodeUnauthenticated, graph.ErrUnauthenticated.Error())
			return
		}
		p, err := s.store.Authenticate(r.Context(), token)
		if errors.Is(err, store.ErrUnauthenticated) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="auditexport", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, graph.CodeUnauthenticated, "the API token is not valid")
			return
		}
		if errors.Is(err, store.ErrUnavailable) {
			s.log.Warn("authenticate: the store is unavailable", "error", err)
			writeUnavailable(w)
			return
		}
		if err != nil {
			s.log.Error("authenticate", "error", err)
			writeError(w, http.StatusInternalServerError, graph.CodeInternal, "internal server error")
			return
		}
		next.ServeHTTP(w, r.WithContext(graph.WithPrincipal(r.Context(), p)))
	})
}

// require answers 403 unless the authenticated caller holds perm.
func (s *Server) require(perm store.Permission, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := graph.PrincipalFrom(r.Context())
		if !p.Can(perm) {
			writeError(w, http.StatusForbidden, graph.CodeForbidden, (&graph.ForbiddenError{Token: p.Name, Permission: perm}).Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// graphQL serves POST /api/audit/graphql: the body is bounded and must be JSON (what a browser
// sends across sites without asking first is refused), the work and the answer are bounded by
// graph.Limits, and an operation refused for lack of a permission or token answers 403 or 401,
// not 200.
func (s *Server) graphQL() http.Handler {
	limits := graph.DefaultLimits()
	gql := graph.NewHandler(graph.HandlerConfig{Resolver: &graph.Resolver{Store: s.store, Checker: s.checker, Exporter: s.exporter, TrustPrincipal: s.cfg.TrustPrincipal}, Logger: s.log, Limits: limits})
	gql.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if hint, ok := ctx.Value(statusHintKey{}).(*statusHint); ok && resp != nil {
			hint.fromErrors(resp)
		}
		return resp
	})
	limit := s.cfg.MaxGraphQLBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, graph.CodeBadRequest, "Content-Type must be application/json")
			return
		}
		if r.ContentLength > limit {
			writeError(w, http.StatusRequestEntityTooLarge, graph.CodeBadRequest, fmt.Sprintf("request body exceeds %d bytes", limit))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, graph.CodeBadRequest, fmt.Sprintf("request body exceeds %d bytes", limit))
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, graph.CodeBadRequest, "could not read request body")
			return
		}
		if !json.Valid(body) {
			writeError(w, http.StatusBadRequest, graph.CodeBadRequest, "request body is not valid JSON")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		hint := &statusHint{}
		// The request's context ends when the client goes away; the handler stops resolving then.
		gql.ServeHTTP(&hintedWriter{ResponseWriter: w, hint: hint, maxBytes: limits.MaxResponseBytes},
			r.WithContext(context.WithValue(r.Context(), statusHintKey{}, hint)))
	})
}

type statusHintKey struct{}

// statusHint carries the HTTP status a GraphQL response's errors call for from the executor to
// the response writer.
type statusHint struct{ status int }

func (h *statusHint) fromErrors(resp *graphql.Response) {
	for _, e := range resp.Errors {
		switch e.Extensions["code"] {
		case graph.CodeUnauthenticated:
			h.status = http.StatusUnauthorized
			return
		case graph.CodeForbidden:
			h.status = http.StatusForbidden
		case graph.CodeResponseTooLarge:
			h.status = http.StatusUnprocessableEntity
		}
	}
}

// hintedWriter replaces an implicit 200 with the status the hint asks for, and bounds the
// answer to maxBytes. The handler bounds the answer as it builds it, by an estimate; this bound
// is exact, counting what encoding/json adds when gqlgen writes it.
type hintedWriter struct {
	http.ResponseWriter
	hint              *statusHint
	wroteHeader       bool
	written, maxBytes int64
}

func (w *hintedWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	if code == http.StatusOK && w.hint.status != 0 {
		code = w.hint.status
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *hintedWriter) Write(b []byte) (int, error) {
	if w.written+int64(len(b)) > w.maxBytes {
		if w.wroteHeader {
			// Part of the answer is gone: cutting the connection tells the client it is incomplete.
			panic(http.ErrAbortHandler)
		}
		// gqlgen writes its answer in one piece, so this is the whole answer: replace it.
		w.wroteHeader = true
		writeError(w.ResponseWriter, http.StatusUnprocessableEntity, graph.CodeResponseTooLarge, graph.ResponseTooLargeError(w.maxBytes).Message)
		return len(b), nil
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.written += int64(len(b))
	return w.ResponseWriter.Write(b)
}

// statusRecorder remembers the status a handler wrote, for logs and metrics.
type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.wroteHeader, r.code = true, code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.wroteHeader, r.code = true, http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) status() int {
	if !r.wroteHeader {
		return http.StatusOK
	}
	return r.code
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// writeError answers in the shape of a GraphQL error response on every route, so clients parse
// one format: {"errors":[{"message":…,"extensions":{"code":…}}]}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": message, "extensions": map[string]any{"code": code}}},
	})
}
