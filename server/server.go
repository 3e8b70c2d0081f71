// Package server is auditexport's HTTP side: it opens the store, installs the bootstrap
// credentials, and serves the GraphQL control plane, health checks and metrics, with
// authentication on every route that carries data and a graceful shutdown.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/internal/buildinfo"
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/bolt"
)

// Config configures Run. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// Listen is the TCP address to serve on. Default 127.0.0.1:8080; port 0 picks a free port
	// (the chosen address is logged as "listening").
	Listen string
	// DataDir holds the bbolt file, master.key and admin-token. Default ./data.
	DataDir string
	// DatabaseURL, when set, keeps the store in that PostgreSQL database instead of the bbolt
	// file, so that several replicas share it (AUDITEXPORT_DATABASE_URL; any libpq form).
	DatabaseURL string
	// AdminToken, when set, is the bootstrap admin token (AUDITEXPORT_ADMIN_TOKEN).
	AdminToken string
	// MasterKey, when set, is the base64 master key (AUDITEXPORT_MASTER_KEY).
	MasterKey string
	// ShutdownTimeout bounds how long in-flight requests may run after a stop signal. Default 30s.
	ShutdownTimeout time.Duration
	// MaxGraphQLBodyBytes bounds a GraphQL request body. Default 1 MiB.
	MaxGraphQLBodyBytes int64
	// MaxEventsBodyBytes bounds an events request body, before and after decompression.
	// Default 16 MiB.
	MaxEventsBodyBytes int64
	// DiskMinFreeBytes: below this much free space on the data directory's disk, /readyz
	// answers 503. Default 64 MiB.
	DiskMinFreeBytes int64
	// Buffer bounds the event buffer and its retention.
	Buffer store.BufferConfig
	// Playground serves GraphiQL on GET /api/audit/graphql. Default true in DefaultConfig.
	Playground bool
	// Checks configures connectivity checks (workers, timeout, re-check schedule).
	Checks exporter.CheckerConfig
	// Export configures the exporter; its TempDir is <DataDir>/export-tmp.
	Export exporter.ExporterConfig
	// TrustPrincipal is the AWS account id or principal ARN assumed-role trust policies name
	// (graph.ParseTrustPrincipal); empty: a placeholder.
	TrustPrincipal string
	// AllowedEndpoints restricts the endpoints configurations may name, in
	// store.ParseEndpointPolicy's form: "" any, "none" none, else host[:port] patterns.
	AllowedEndpoints string
	// AllowPrivateEndpoints names the endpoints whose connections may reach loopback and private
	// addresses, in destination.ParseAddressPolicy's form: "" none (the default), "any", else
	// host[:port] patterns. Link-local and metadata addresses are never reached.
	AllowPrivateEndpoints string
	// Destinations configures how destinations are reached: part sizes and the transport's
	// timeouts. Its AWS, Endpoints and Transport.Addresses are set by Run.
	Destinations exporter.ClientsConfig
	// Logger receives structured logs. Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration `auditexport serve` starts from, its components'
// defaults included: the one place the command's flags take their defaults from.
func DefaultConfig() Config {
	export := exporter.DefaultExporterConfig()
	// Zero: Run derives it from ShutdownTimeout unless set.
	export.DrainTimeout = 0
	return Config{
		Listen:              "127.0.0.1:8080",
		DataDir:             "./data",
		ShutdownTimeout:     30 * time.Second,
		MaxGraphQLBodyBytes: 1 << 20,
		MaxEventsBodyBytes:  16 << 20,
		DiskMinFreeBytes:    64 << 20,
		Buffer:              store.DefaultBufferConfig(),
		Playground:          true,
		Checks:              exporter.DefaultCheckerConfig(),
		Export:              export,
		Destinations:        exporter.DefaultClientsConfig(),
	}
}

func (c *Config) fillDefaults() {
	def := DefaultConfig()
	c.Listen = cmp.Or(c.Listen, def.Listen)
	c.DataDir = cmp.Or(c.DataDir, def.DataDir)
	c.ShutdownTimeout = cmp.Or(max(c.ShutdownTimeout, 0), def.ShutdownTimeout)
	c.MaxGraphQLBodyBytes = cmp.Or(max(c.MaxGraphQLBodyBytes, 0), def.MaxGraphQLBodyBytes)
	c.MaxEventsBodyBytes = cmp.Or(max(c.MaxEventsBodyBytes, 0), def.MaxEventsBodyBytes)
	c.DiskMinFreeBytes = cmp.Or(max(c.DiskMinFreeBytes, 0), def.DiskMinFreeBytes)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
}

// Run opens the store (cfg.DatabaseURL, else under cfg.DataDir), serves until ctx is done, then
// stops accepting requests, lets in-flight ones finish within ShutdownTimeout, stops the
// background work and waits for it, and closes the store. On every path out, the workers stop
// before the store closes, and nothing is written to the data directory before the address is
// bound.
func Run(ctx context.Context, cfg Config) (err error) {
	cfg.fillDefaults()
	log := cfg.Logger
	endpoints, err := store.ParseEndpointPolicy(cfg.AllowedEndpoints)
	if err != nil {
		return err
	}
	addresses, err := destination.ParseAddressPolicy(cfg.AllowPrivateEndpoints)
	if err != nil {
		return err
	}
	// The service's own AWS identity and endpoint settings, from the SDK's default chain: read
	// before anything is created, so a malformed AWS_* variable leaves no trace either.
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	// Bound first: a busy port must not leave a half-made data directory (a new master key and
	// admin token) behind.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	defer ln.Close() // already closed by the HTTP server when it served
	if err := prepareDataDir(cfg.DataDir, log); err != nil {
		return err
	}
	// Damage found in the data file while serving ends the service with the file's error.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	defer func() {
		if damage := context.Cause(ctx); errors.As(damage, new(*bolt.DamagedError)) {
			err = damage
		}
	}()
	key, err := masterKey(cfg, log)
	if err != nil {
		return err
	}
	engine, err := openEngine(ctx, cfg, log, func(err error) {
		log.Error("the data file is damaged; stopping", "error", err)
		stop(err)
	})
	if err != nil {
		return err
	}
	st, err := store.New(ctx, engine, store.Config{MasterKey: key, Logger: log, Buffer: cfg.Buffer, Endpoints: endpoints})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close store", "error", err)
		}
	}()
	if err := ensureAdminToken(ctx, cfg.DataDir, cfg.AdminToken, st, log); err != nil {
		return err
	}

	destinations := cfg.Destinations
	destinations.AWS, destinations.Endpoints, destinations.Transport.Addresses = awsCfg, endpoints, addresses
	clients := exporter.NewClients(destinations)
	checks := cfg.Checks
	checks.Logger = log
	checker := exporter.NewChecker(checks, st, clients)
	exports := cfg.Export
	exports.Logger, exports.TempDir = log, filepath.Join(cfg.DataDir, exportTempDirName)
	exports.DrainTimeout = min(max(exports.DrainTimeout, 0), cfg.ShutdownTimeout)
	if exports.DrainTimeout == 0 {
		exports.DrainTimeout = cfg.ShutdownTimeout * 2 / 3
	}
	exp := exporter.NewExporter(exports, st, clients)
	// Background work runs under the server's lifetime, stopped after the HTTP drain so requests
	// waiting on a check get their answer.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	// Started before serving: the first request finds both accepting work.
	checkerDone, exporterDone := checker.Start(workCtx), exp.Start(workCtx)
	// Registered after the store's Close, so it runs before it, on every path.
	defer stopAndWait(stopWork, checkerDone, exporterDone)

	httpServer := &http.Server{
		Handler:           New(cfg, st, checker, exp).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(ln) }()
	build := buildinfo.Read()
	log.Info("listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "store", storeKind(cfg),
		"allowed_endpoints", endpoints.String(), "allow_private_endpoints", addresses.String(),
		"version", build.Version, "revision", build.Revision, "revision_time", build.Time, "go_version", build.GoVersion)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	// The lifetime context has ended; the drain gets its own bounded one.
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpServer.Shutdown(drainCtx); err != nil {
		log.Warn("requests still running at the shutdown deadline were cut off", "error", err)
		httpServer.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	stopAndWait(stopWork, checkerDone, exporterDone)
	log.Info("stopped")
	return nil
}

// stopAndWait ends the background work and waits for it: checks are bounded by their timeout,
// export attempts by the drain timeout. Calling it again returns at once.
func stopAndWait(stop context.CancelFunc, done ...<-chan struct{}) {
	stop()
	for _, d := range done {
		<-d
	}
}
