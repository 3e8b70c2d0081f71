package main

import (
	"context"
	"encoding/base64"
	"net/url"
	"path/filepath"
	"slices"
	"testing"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/auditexport/auditexport/store"
)

// TestDockerComposeReplicas checks the compose file's replicas profile: PostgreSQL and two
// replicas sharing its database, one master key and one admin token, each on its own port; and
// that the plain demo (no profile) starts none of them.
func TestDockerComposeReplicas(t *testing.T) {
	if _, ok := loadCompose(t).Services["postgres"]; ok {
		t.Fatal("docker compose up without a profile starts PostgreSQL")
	}
	opts, err := composecli.NewProjectOptions([]string{filepath.Join(repoRoot, "docker-compose.yml")},
		composecli.WithWorkingDirectory(repoRoot), composecli.WithEnv([]string{}), composecli.WithProfiles([]string{"replicas"}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pg, ok := p.Services["postgres"]
	if !ok || pg.Image != "postgres:17.6-bookworm" || pg.HealthCheck == nil || !slices.Contains(pg.HealthCheck.Test, "pg_isready") {
		t.Fatalf("postgres service %+v", pg)
	}
	env := func(s types.ServiceConfig, name string) string {
		if v := s.Environment[name]; v != nil {
			return *v
		}
		return ""
	}
	var keys, tokens, ports []string
	for _, name := range []string{"replica-1", "replica-2"} {
		r, ok := p.Services[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		if d, ok := r.DependsOn["postgres"]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s does not wait for a healthy postgres: %+v", name, r.DependsOn)
		}
		u, err := url.Parse(env(r, "AUDITEXPORT_DATABASE_URL"))
		if err != nil || u.Host != "postgres:5432" || u.User.Username() != env(pg, "POSTGRES_USER") || u.Path != "/"+env(pg, "POSTGRES_DB") {
			t.Errorf("%s's database URL %q is not the postgres service's database (%v)", name, env(r, "AUDITEXPORT_DATABASE_URL"), err)
		} else if password, _ := u.User.Password(); password != env(pg, "POSTGRES_PASSWORD") {
			t.Errorf("%s's database password is not postgres's", name)
		}
		if key, err := base64.StdEncoding.DecodeString(env(r, "AUDITEXPORT_MASTER_KEY")); err != nil || len(key) != store.MasterKeySize {
			t.Errorf("%s's master key is not %d bytes of base64", name, store.MasterKeySize)
		}
		if len(r.Ports) != 1 || r.Ports[0].HostIP != "127.0.0.1" || r.Ports[0].Target != 8080 {
			t.Errorf("%s ports %+v", name, r.Ports)
		} else {
			ports = append(ports, r.Ports[0].Published)
		}
		if r.HealthCheck == nil || len(r.HealthCheck.Test) < 3 {
			t.Fatalf("%s healthcheck %+v", name, r.HealthCheck)
		}
		checkCLICommand(t, r.HealthCheck.Test[2:])
		keys, tokens = append(keys, env(r, "AUDITEXPORT_MASTER_KEY")), append(tokens, env(r, "AUDITEXPORT_ADMIN_TOKEN"))
	}
	if keys[0] != keys[1] || tokens[0] != tokens[1] || len(ports) != 2 || ports[0] == ports[1] {
		t.Errorf("the replicas do not share one key and token on two ports: ports %v", ports)
	}
}
