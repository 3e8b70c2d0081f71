package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/graph"
	"github.com/auditexport/auditexport/server"
	"github.com/auditexport/auditexport/store"
)

func newServeCommand() *cobra.Command {
	// Every default comes from the components, through server.DefaultConfig.
	cfg := server.DefaultConfig()
	logLevel, logFormat := "info", "json"
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the auditexport server",
		Long: `Run the auditexport server: the GraphQL control plane at /api/audit/graphql, health checks
and metrics. Each flag not given takes its AUDITEXPORT_* environment variable (named beside it),
then the default shown; a malformed value refuses to start.

Environment only (secrets never go on the command line):
  AUDITEXPORT_ADMIN_TOKEN  bootstrap admin token (else generated into <data-dir>/admin-token)
  AUDITEXPORT_MASTER_KEY   base64 of 32 bytes sealing secrets at rest (else <data-dir>/master.key);
                           replicas sharing a database must all have the same one

With --database-url (AUDITEXPORT_DATABASE_URL) the store is that PostgreSQL database, shared by
any number of replicas; without it, a bbolt file in --data-dir. Keep the password out of the
command line: in AUDITEXPORT_DATABASE_URL, PGPASSWORD or a .pgpass file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := flagsFromEnv(cmd.Flags()); err != nil {
				return usageError{err}
			}
			logger := newLogger(logLevel, logFormat)
			cfg.Logger = logger
			setGCPercent()
			if cmd.Flags().Changed("database-url") && urlHasPassword(cfg.DatabaseURL) {
				return usageError{errors.New("--database-url must not carry the password, which any user can read in the process list: " +
					"set the URL in AUDITEXPORT_DATABASE_URL, or the password in PGPASSWORD or a .pgpass file")}
			}
			cfg.AdminToken = os.Getenv("AUDITEXPORT_ADMIN_TOKEN")
			cfg.MasterKey = os.Getenv("AUDITEXPORT_MASTER_KEY")
			if err := server.Run(cmd.Context(), cfg); err != nil {
				// Once, in the log's format: the log is where an operator looks.
				logger.Error("server failed", "error", err)
				return loggedError{err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to listen on")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the database, master key and admin token")
	f.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL,
		"PostgreSQL database shared by the replicas (postgres://… or key=value; several hosts with target_session_attrs=read-write follow a failover); empty: bbolt in --data-dir")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long in-flight work may finish after SIGTERM")
	f.BoolVar(&cfg.Playground, "playground", cfg.Playground, "serve the GraphiQL playground on GET /api/audit/graphql")
	f.Int64Var(&cfg.MaxEventsBodyBytes, "events-max-body-bytes", cfg.MaxEventsBodyBytes, "largest events request body, before and after gzip decompression")
	f.Int64Var(&cfg.DiskMinFreeBytes, "disk-min-free-bytes", cfg.DiskMinFreeBytes, "free space on the data directory's disk below which /readyz answers 503")
	f.Int64Var(&cfg.Buffer.MaxEvents, "buffer-max-events", cfg.Buffer.MaxEvents, "events the buffer holds before ingestion answers 503")
	f.Int64Var(&cfg.Buffer.MaxBytes, "buffer-max-bytes", cfg.Buffer.MaxBytes, "encoded bytes the buffer holds before ingestion answers 503")
	f.DurationVar(&cfg.Buffer.MinRetention, "buffer-min-retention", cfg.Buffer.MinRetention, "how long exported events stay in the buffer")
	f.DurationVar(&cfg.Buffer.MaxAge, "buffer-max-age", cfg.Buffer.MaxAge, "age at which events leave the buffer even if not exported (counted as dropped)")
	f.DurationVar(&cfg.Buffer.TrimInterval, "buffer-trim-interval", cfg.Buffer.TrimInterval, "how often the buffer removes what it may")
	f.IntVar(&cfg.Export.Workers, "export-workers", cfg.Export.Workers, "export jobs encoding at once; a job waiting on its destination does not count")
	f.Int64Var(&cfg.Export.MaxFileEventBytes, "export-max-file-bytes", cfg.Export.MaxFileEventBytes, "split an export file once its events reach this many bytes (the Parquet file is smaller)")
	f.Int64Var(&cfg.Export.RowGroupBytes, "export-row-group-bytes", cfg.Export.RowGroupBytes, "events per Parquet row group, in bytes: bounds the memory of an export")
	f.Int64Var(&cfg.Destinations.MultipartThreshold, "export-multipart-threshold", cfg.Destinations.MultipartThreshold, "files larger than this are uploaded in parts (S3) or blocks (ADLS)")
	f.DurationVar(&cfg.Export.RetryMin, "export-retry-min", cfg.Export.RetryMin, "first delay before retrying a failed export; doubles per failure, with jitter")
	f.DurationVar(&cfg.Export.RetryMax, "export-retry-max", cfg.Export.RetryMax, "longest delay before retrying a failed export")
	f.DurationVar(&cfg.Export.LeaseTTL, "export-lease-ttl", cfg.Export.LeaseTTL, "how long an export holds its job without renewing: how soon another replica takes over from one that died")
	f.IntVar(&cfg.Checks.Workers, "check-workers", cfg.Checks.Workers, "background connectivity checks run at once; requested ones start at once, one per configuration")
	f.DurationVar(&cfg.Checks.Timeout, "check-timeout", cfg.Checks.Timeout, "bound on one connectivity check, AssumeRole included")
	f.DurationVar(&cfg.Checks.RetryMin, "check-retry-min", cfg.Checks.RetryMin, "first re-check delay of a failing destination; doubles per failure")
	f.DurationVar(&cfg.Checks.RetryMax, "check-retry-max", cfg.Checks.RetryMax, "longest re-check delay of a failing destination")
	f.DurationVar(&cfg.Checks.HealthyInterval, "check-interval", cfg.Checks.HealthyInterval, "how often a passing destination is checked again")
	f.Var(&checkedString{p: &cfg.AllowedEndpoints, check: func(s string) error { _, err := store.ParseEndpointPolicy(s); return err }},
		"allowed-endpoints", `endpoints configurations may name: empty for any, "none" for AWS's and Azure's own only, or host[:port] patterns such as minio.internal:9000,*.example.com`)
	f.Var(&checkedString{p: &cfg.AllowPrivateEndpoints, check: func(s string) error { _, err := destination.ParseAddressPolicy(s); return err }},
		"allow-private-endpoints", `endpoints that may resolve to loopback or private addresses (never link-local or metadata ones): empty for none, "any", or host[:port] patterns such as 127.0.0.1,minio.internal:9000`)
	f.DurationVar(&cfg.Destinations.Transport.ConnectTimeout, "destination-connect-timeout", cfg.Destinations.Transport.ConnectTimeout, "bound on connecting to a destination, and on its TLS handshake")
	f.DurationVar(&cfg.Destinations.Transport.ResponseTimeout, "destination-response-timeout", cfg.Destinations.Transport.ResponseTimeout, "bound on a destination's reply once a request is sent")
	f.DurationVar(&cfg.Destinations.Transport.ProgressTimeout, "destination-progress-timeout", cfg.Destinations.Transport.ProgressTimeout, "bound on any pause while sending a part or block to a destination, or reading its reply")
	f.Var(&checkedString{p: &cfg.TrustPrincipal, parse: graph.ParseTrustPrincipal},
		"trust-principal", "the AWS account id or principal ARN the service assumes customers' roles as, named in the trust policies it shows")
	f.Var(&checkedString{p: &logLevel, check: oneOf("debug", "info", "warn", "error")}, "log-level", "debug, info, warn or error")
	f.Var(&checkedString{p: &logFormat, check: oneOf("json", "text")}, "log-format", "json or text")
	f.VisitAll(func(fl *pflag.Flag) { fl.Usage += " (" + envNameOf(fl.Name) + ")" })
	return cmd
}

// defaultGCPercent is the garbage collector's target, GOGC, unless the environment sets one.
// The server's heap is a small live set beside a stream of short-lived buffers (request
// bodies, chunks of events, Parquet pages), so Go's default of 100 collects often for little:
// at 200 the server spent 12% less CPU ingesting and exporting a million events, for about
// 80 to 100 MiB more resident memory (BenchmarkVersusDuckDB, in the README). GOGC=100 trades
// back.
const defaultGCPercent = 200

func setGCPercent() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// flagsFromEnv sets each flag not given on the command line from its AUDITEXPORT_* variable. A
// value the flag would refuse is refused, naming the variable and what it expects: silently
// running on the default instead is how a typo goes unnoticed.
func flagsFromEnv(f *pflag.FlagSet) error {
	var errs []error
	f.VisitAll(func(fl *pflag.Flag) {
		name := envNameOf(fl.Name)
		v, ok := os.LookupEnv(name)
		if !ok || v == "" || fl.Changed {
			return
		}
		if err := fl.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not valid: %s", name, v, expectation(fl.Value, err)))
		}
	})
	return errors.Join(errs...)
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

// expectation says what a flag's value must look like.
func expectation(v pflag.Value, err error) string {
	switch v.Type() {
	case "duration":
		return "expected a duration with its unit, such as 10s, 5m or 24h"
	case "int", "int64":
		return "expected a whole number"
	case "bool":
		return "expected true or false"
	}
	return err.Error()
}

// envNameOf maps a flag name to its environment variable: check-timeout -> AUDITEXPORT_CHECK_TIMEOUT.
func envNameOf(flag string) string {
	return "AUDITEXPORT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// checkedString is a string flag whose value is checked when set, from the command line or the
// environment alike.
type checkedString struct {
	p     *string
	check func(string) error
	// parse, when set instead of check, checks a value and gives the form stored.
	parse func(string) (string, error)
}

func (c *checkedString) String() string {
	if c.p == nil {
		return ""
	}
	return *c.p
}
func (c *checkedString) Type() string { return "string" }
func (c *checkedString) Set(v string) error {
	if c.parse == nil {
		if err := c.check(v); err != nil {
			return err
		}
	} else if parsed, err := c.parse(v); err != nil {
		return err
	} else {
		v = parsed
	}
	*c.p = v
	return nil
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if strings.EqualFold(v, a) {
				return nil
			}
		}
		return fmt.Errorf("expected one of %s", strings.Join(allowed, ", "))
	}
}

// newLogger builds the server's logger; level and format were checked when set.
func newLogger(level, format string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if strings.EqualFold(format, "text") {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
