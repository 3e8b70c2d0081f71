// Package graph is the GraphQL control plane: gqlgen resolvers over the store. Resolvers only
// translate between GraphQL and store types; rules live in the store, HTTP concerns in server.
package graph

//go:generate go tool gqlgen generate --config ../gqlgen.yml

import (
	"log/slog"

	"github.com/auditexport/auditexport/store"
)

// Store is what the resolvers need from persistence.
type Store interface {
	CreateConfiguration(c store.ExportConfiguration, secret string) (store.ExportConfiguration, error)
	Configuration(id string) (store.ExportConfiguration, error)
	Configurations() ([]store.ExportConfiguration, error)
	UpdateConfiguration(id, by string, change store.Change, newSecret *string) (store.ExportConfiguration, error)
	SetEnabled(id, by string, enabled bool) (store.ExportConfiguration, error)
	DeleteConfiguration(id string) (store.ExportConfiguration, error)
	CreateToken(name string, perms []store.Permission, createdBy string) (string, store.Token, error)
}

var _ Store = (*store.Store)(nil)

// Resolver is the root resolver: it carries the dependencies the resolvers call.
type Resolver struct {
	Store  Store
	Logger *slog.Logger
}
