package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/graph"
	"github.com/auditexport/auditexport/server"
	"github.com/auditexport/auditexport/store"
)

func newServeCommand() *cobra.Command {
	cfg := server.DefaultConfig()
	var logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the auditexport server",
		Long: `Run the auditexport server: the GraphQL control plane at /api/audit/graphql, health checks
and metrics. Flags default to their AUDITEXPORT_* environment variables, then to built-in defaults.

Environment only (secrets never go on the command line):
  AUDITEXPORT_ADMIN_TOKEN  bootstrap admin token (else generated into <data-dir>/admin-token)
  AUDITEXPORT_MASTER_KEY   base64 of 32 bytes sealing secrets at rest (else <data-dir>/master.key);
                           replicas sharing a database must all have the same one

With --database-url (AUDITEXPORT_DATABASE_URL) the store is that PostgreSQL database, shared by
any number of replicas; without it, a bbolt file in --data-dir. Keep the password out of the
command line: in AUDITEXPORT_DATABASE_URL, PGPASSWORD or a .pgpass file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logLevel, logFormat)
			if err != nil {
				return usageError{err}
			}
			cfg.Logger = logger
			if _, err := store.ParseEndpointPolicy(cfg.AllowedEndpoints); err != nil {
				return usageError{fmt.Errorf("--allowed-endpoints: %w", err)}
			}
			if cmd.Flags().Changed("database-url") && urlHasPassword(cfg.DatabaseURL) {
				return usageError{errors.New("--database-url must not carry the password, which any user can read in the process list: " +
					"set the URL in AUDITEXPORT_DATABASE_URL, or the password in PGPASSWORD or a .pgpass file")}
			}
			if _, err := destination.ParseAddressPolicy(cfg.AllowPrivateEndpoints); err != nil {
				return usageError{fmt.Errorf("--allow-private-endpoints: %w", err)}
			}
			if cfg.TrustPrincipal, err = graph.ParseTrustPrincipal(cfg.TrustPrincipal); err != nil {
				return usageError{fmt.Errorf("--trust-principal: %w", err)}
			}
			cfg.AdminToken = os.Getenv("AUDITEXPORT_ADMIN_TOKEN")
			cfg.MasterKey = os.Getenv("AUDITEXPORT_MASTER_KEY")
			if err := server.Run(cmd.Context(), cfg); err != nil {
				logger.Error("server failed", "error", err)
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", env("AUDITEXPORT_LISTEN", cfg.Listen), "address to listen on (AUDITEXPORT_LISTEN)")
	f.StringVar(&cfg.DataDir, "data-dir", env("AUDITEXPORT_DATA_DIR", cfg.DataDir), "directory for the database, master key and admin token (AUDITEXPORT_DATA_DIR)")
	f.StringVar(&cfg.DatabaseURL, "database-url", env("AUDITEXPORT_DATABASE_URL", ""),
		"PostgreSQL database shared by the replicas (postgres://… or key=value; several hosts with target_session_attrs=read-write follow a failover); empty: bbolt in --data-dir (AUDITEXPORT_DATABASE_URL)")
	durationFlag(f, &cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long in-flight work may finish after SIGTERM")
	f.BoolVar(&cfg.Playground, "playground", cfg.Playground, "serve the GraphiQL playground on GET /api/audit/graphql")
	int64Flag(f, &cfg.MaxEventsBodyBytes, "events-max-body-bytes", cfg.MaxEventsBodyBytes, "largest events request body, before and after gzip decompression")
	int64Flag(f, &cfg.DiskMinFreeBytes, "disk-min-free-bytes", cfg.DiskMinFreeBytes, "free space on the data directory's disk below which /readyz answers 503")
	int64Flag(f, &cfg.Buffer.MaxEvents, "buffer-max-events", 5_000_000, "events the buffer holds before ingestion answers 503")
	int64Flag(f, &cfg.Buffer.MaxBytes, "buffer-max-bytes", 4<<30, "encoded bytes the buffer holds before ingestion answers 503")
	durationFlag(f, &cfg.Buffer.MinRetention, "buffer-min-retention", time.Hour, "how long exported events stay in the buffer")
	durationFlag(f, &cfg.Buffer.MaxAge, "buffer-max-age", 30*24*time.Hour, "age at which events leave the buffer even if not exported (counted as dropped)")
	durationFlag(f, &cfg.Buffer.TrimInterval, "buffer-trim-interval", time.Minute, "how often the buffer removes what it may")
	f.IntVar(&cfg.Export.Workers, "export-workers", envInt("AUDITEXPORT_EXPORT_WORKERS", 2), "export jobs encoding at once; a job waiting on its destination does not count (AUDITEXPORT_EXPORT_WORKERS)")
	int64Flag(f, &cfg.Export.MaxFileEventBytes, "export-max-file-bytes", 128<<20, "split an export file once its events reach this many bytes (the Parquet file is smaller)")
	int64Flag(f, &cfg.Export.RowGroupBytes, "export-row-group-bytes", 16<<20, "events per Parquet row group, in bytes: bounds the memory of an export")
	int64Flag(f, &cfg.Destinations.MultipartThreshold, "export-multipart-threshold", 16<<20, "files larger than this are uploaded in parts (S3) or blocks (ADLS)")
	durationFlag(f, &cfg.Export.RetryMin, "export-retry-min", 10*time.Second, "first delay before retrying a failed export; doubles per failure, with jitter")
	durationFlag(f, &cfg.Export.LeaseTTL, "export-lease-ttl", 30*time.Second, "how long an export holds its job without renewing: how soon another replica takes over from one that died")
	durationFlag(f, &cfg.Export.RetryMax, "export-retry-max", 15*time.Minute, "longest delay before retrying a failed export")
	f.IntVar(&cfg.Checks.Workers, "check-workers", envInt("AUDITEXPORT_CHECK_WORKERS", 4), "background connectivity checks run at once; requested ones start at once, one per configuration (AUDITEXPORT_CHECK_WORKERS)")
	durationFlag(f, &cfg.Checks.Timeout, "check-timeout", 10*time.Second, "bound on one connectivity check, AssumeRole included")
	durationFlag(f, &cfg.Checks.RetryMin, "check-retry-min", time.Minute, "first re-check delay of a failing destination; doubles per failure")
	durationFlag(f, &cfg.Checks.RetryMax, "check-retry-max", 15*time.Minute, "longest re-check delay of a failing destination")
	durationFlag(f, &cfg.Checks.HealthyInterval, "check-interval", 24*time.Hour, "how often a passing destination is checked again")
	f.StringVar(&cfg.AllowedEndpoints, "allowed-endpoints", env("AUDITEXPORT_ALLOWED_ENDPOINTS", ""),
		`endpoints configurations may name: empty for any, "none" for AWS's and Azure's own only, or host[:port] patterns such as minio.internal:9000,*.example.com (AUDITEXPORT_ALLOWED_ENDPOINTS)`)
	f.StringVar(&cfg.AllowPrivateEndpoints, "allow-private-endpoints", env("AUDITEXPORT_ALLOW_PRIVATE_ENDPOINTS", ""),
		`endpoints that may resolve to loopback or private addresses (never link-local or metadata ones): empty for none, "any", or host[:port] patterns such as 127.0.0.1,minio.internal:9000 (AUDITEXPORT_ALLOW_PRIVATE_ENDPOINTS)`)
	durationFlag(f, &cfg.Destinations.Transport.ConnectTimeout, "destination-connect-timeout", 10*time.Second, "bound on connecting to a destination, and on its TLS handshake")
	durationFlag(f, &cfg.Destinations.Transport.ResponseTimeout, "destination-response-timeout", time.Minute, "bound on a destination's reply once a request is sent")
	durationFlag(f, &cfg.Destinations.Transport.ProgressTimeout, "destination-progress-timeout", time.Minute, "bound on any pause while sending a part or block to a destination, or reading its reply")
	f.StringVar(&cfg.TrustPrincipal, "trust-principal", env("AUDITEXPORT_TRUST_PRINCIPAL", ""),
		"the AWS account id or principal ARN the service assumes customers' roles as, named in the trust policies it shows (AUDITEXPORT_TRUST_PRINCIPAL)")
	f.StringVar(&logLevel, "log-level", env("AUDITEXPORT_LOG_LEVEL", "info"), "debug, info, warn or error (AUDITEXPORT_LOG_LEVEL)")
	f.StringVar(&logFormat, "log-format", env("AUDITEXPORT_LOG_FORMAT", "json"), "json or text (AUDITEXPORT_LOG_FORMAT)")
	return cmd
}

// urlHasPassword reports whether a libpq connection string (URL or key=value form) carries a
// password.
func urlHasPassword(conn string) bool {
	if u, err := url.Parse(conn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		_, set := u.User.Password()
		return set || u.Query().Has("password")
	}
	return strings.Contains(conn, "password")
}

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

// durationFlag defines --name, defaulting to AUDITEXPORT_<NAME> when that parses, else to def.
func durationFlag(f *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	envName := envNameOf(name)
	if d, err := time.ParseDuration(os.Getenv(envName)); err == nil {
		def = d
	}
	f.DurationVar(p, name, def, usage+" ("+envName+")")
}

// int64Flag defines --name, defaulting to AUDITEXPORT_<NAME> when that parses, else to def.
func int64Flag(f *pflag.FlagSet, p *int64, name string, def int64, usage string) {
	envName := envNameOf(name)
	if n, err := strconv.ParseInt(os.Getenv(envName), 10, 64); err == nil {
		def = n
	}
	f.Int64Var(p, name, def, usage+" ("+envName+")")
}

func envInt(name string, fallback int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return fallback
}

// envNameOf maps a flag name to its environment variable: check-timeout -> AUDITEXPORT_CHECK_TIMEOUT.
func envNameOf(flag string) string {
	return "AUDITEXPORT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not json or text", format)
}
