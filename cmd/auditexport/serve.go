package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/auditexport/auditexport/server"
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
  AUDITEXPORT_MASTER_KEY   base64 of 32 bytes sealing secrets at rest (else <data-dir>/master.key)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logLevel, logFormat)
			if err != nil {
				return usageError{err}
			}
			cfg.Logger = logger
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
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", envDuration("AUDITEXPORT_SHUTDOWN_TIMEOUT", cfg.ShutdownTimeout), "how long in-flight work may finish after SIGTERM (AUDITEXPORT_SHUTDOWN_TIMEOUT)")
	f.BoolVar(&cfg.Playground, "playground", cfg.Playground, "serve the GraphiQL playground on GET /api/audit/graphql")
	f.StringVar(&logLevel, "log-level", env("AUDITEXPORT_LOG_LEVEL", "info"), "debug, info, warn or error (AUDITEXPORT_LOG_LEVEL)")
	f.StringVar(&logFormat, "log-format", env("AUDITEXPORT_LOG_FORMAT", "json"), "json or text (AUDITEXPORT_LOG_FORMAT)")
	return cmd
}

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

func envDuration(name string, fallback time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return fallback
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
