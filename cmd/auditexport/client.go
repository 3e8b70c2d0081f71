package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/auditexport/auditexport/server"
)

// connection is where the CLI sends its requests, and with what token.
type connection struct {
	url   string
	token string
}

// connectionFlags are the flags every client command shares.
type connectionFlags struct {
	url, token, profile, configPath, output string
	timeout                                 time.Duration
}

func (f *connectionFlags) register(cmd *cobra.Command) {
	p := cmd.PersistentFlags()
	p.StringVar(&f.url, "url", "", "server URL (else AUDITEXPORT_URL, else the profile, else http://127.0.0.1:8080)")
	p.StringVar(&f.token, "token", "", "API token (else AUDITEXPORT_TOKEN, else the profile); prefer those: a flag shows in the process list")
	p.StringVar(&f.profile, "profile", "", "profile of the config file (else AUDITEXPORT_PROFILE, else its current-profile)")
	p.StringVar(&f.configPath, "config", "", "config file (else AUDITEXPORT_CONFIG, else ~/.config/auditexport/config.yaml)")
	p.StringVarP(&f.output, "output", "o", "table", "table or json (the GraphQL data, with its field names)")
	p.DurationVar(&f.timeout, "timeout", 2*time.Minute, "bound on each request")
}

// cliConfig is ~/.config/auditexport/config.yaml:
//
//	current-profile: prod
//	profiles:
//	  prod:
//	    url: https://audit.example.com
//	    token-file: /run/secrets/auditexport-token   # or token: aex_…
type cliConfig struct {
	CurrentProfile string                `json:"current-profile"`
	Profiles       map[string]cliProfile `json:"profiles"`
}

type cliProfile struct {
	URL       string `json:"url"`
	Token     string `json:"token"`
	TokenFile string `json:"token-file"`
}

func (f *connectionFlags) resolve() (connection, error) {
	if f.output != "table" && f.output != "json" {
		return connection{}, usageError{fmt.Errorf("--output must be table or json, not %q", f.output)}
	}
	conn := connection{url: cmp.Or(f.url, os.Getenv("AUDITEXPORT_URL")), token: cmp.Or(f.token, os.Getenv("AUDITEXPORT_TOKEN"))}
	if conn.url == "" || conn.token == "" {
		profile, err := f.loadProfile()
		if err != nil {
			return connection{}, usageError{err}
		}
		conn.url = cmp.Or(conn.url, profile.URL)
		if conn.token == "" && profile.TokenFile != "" {
			data, err := os.ReadFile(profile.TokenFile)
			if err != nil {
				return connection{}, usageError{fmt.Errorf("token-file: %w", err)}
			}
			conn.token = strings.TrimSpace(string(data))
		}
		conn.token = cmp.Or(conn.token, profile.Token)
	}
	conn.url = strings.TrimRight(cmp.Or(conn.url, "http://127.0.0.1:8080"), "/")
	if conn.token == "" {
		return connection{}, usageError{errors.New("no API token: set AUDITEXPORT_TOKEN, or a profile in ~/.config/auditexport/config.yaml, or --token")}
	}
	return conn, nil
}

// loadProfile reads the chosen profile; a missing default config file is no error.
func (f *connectionFlags) loadProfile() (cliProfile, error) {
	path := cmp.Or(f.configPath, os.Getenv("AUDITEXPORT_CONFIG"))
	explicit := path != ""
	if !explicit {
		dir, err := os.UserConfigDir()
		if err != nil {
			return cliProfile{}, nil
		}
		path = filepath.Join(dir, "auditexport", "config.yaml")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		if name := cmp.Or(f.profile, os.Getenv("AUDITEXPORT_PROFILE")); name != "" {
			return cliProfile{}, fmt.Errorf("profile %q: no config file at %s", name, path)
		}
		return cliProfile{}, nil
	}
	if err != nil {
		return cliProfile{}, fmt.Errorf("config file: %w", err)
	}
	var cfg cliConfig
	if err := strictYAML(data, &cfg); err != nil {
		return cliProfile{}, fmt.Errorf("config file %s: %w", path, err)
	}
	name := cmp.Or(f.profile, os.Getenv("AUDITEXPORT_PROFILE"), cfg.CurrentProfile, "default")
	profile, ok := cfg.Profiles[name]
	if !ok && (f.profile != "" || os.Getenv("AUDITEXPORT_PROFILE") != "" || cfg.CurrentProfile != "") {
		return cliProfile{}, fmt.Errorf("config file %s has no profile %q", path, name)
	}
	return profile, nil
}

// apiClient talks to one server.
type apiClient struct {
	conn    connection
	http    *http.Client
	timeout time.Duration
}

// apiError is a refusal from the server: its message and code.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// graphQL runs an operation and returns the data field named field (the operation's only
// root field), undecoded.
func (c *apiClient) graphQL(ctx context.Context, query string, vars map[string]any, field string) (json.RawMessage, error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return nil, err
	}
	status, raw, err := c.post(ctx, server.GraphQLPath, "application/json", body)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Data   map[string]json.RawMessage `json:"data"`
		Errors []gqlError                 `json:"errors"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("the server answered %d with something other than JSON", status)
	}
	if len(resp.Errors) > 0 {
		return nil, refusal(status, resp.Errors)
	}
	if status != http.StatusOK {
		return nil, &apiError{Status: status, Message: fmt.Sprintf("the server answered %d", status)}
	}
	return resp.Data[field], nil
}

func refusal(status int, errs []gqlError) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Message
	}
	code, _ := errs[0].Extensions["code"].(string)
	return &apiError{Status: status, Code: code, Message: strings.Join(msgs, "; ")}
}

func (c *apiClient) post(ctx context.Context, path, contentType string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.conn.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, usageError{fmt.Errorf("server URL %q: %w", c.conn.url, err)}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+c.conn.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot reach %s: %w", c.conn.url, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, raw, err
}
