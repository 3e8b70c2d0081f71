package graph

import (
	"context"
	"errors"
	"fmt"

	"github.com/99designs/gqlgen/graphql"

	"github.com/auditexport/auditexport/graph/model"
	"github.com/auditexport/auditexport/store"
)

type principalKey struct{}

// WithPrincipal returns a context carrying the authenticated caller.
func WithPrincipal(ctx context.Context, p store.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the authenticated caller, if any.
func PrincipalFrom(ctx context.Context) (store.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(store.Principal)
	return p, ok
}

// caller is who makes the request: the store records the token's name as createdBy and
// updatedBy, and the token as the actor of its audit events.
func caller(ctx context.Context) store.Principal {
	p, _ := PrincipalFrom(ctx)
	return p
}

// ErrUnauthenticated means the request carried no valid token.
var ErrUnauthenticated = errors.New("a valid API token is required (Authorization: Bearer <token>)")

// ForbiddenError means the caller's token lacks the permission a field needs.
type ForbiddenError struct {
	Token      string
	Permission store.Permission
}

func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("token %q lacks the %s permission this operation needs", e.Token, e.Permission)
}

// authenticated implements @authenticated: the field resolves for any authenticated caller.
func authenticated(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	if _, ok := PrincipalFrom(ctx); !ok {
		return nil, ErrUnauthenticated
	}
	return next(ctx)
}

// hasPermission implements @hasPermission: the field resolves only for a caller holding the
// permission (or ADMIN).
func hasPermission(ctx context.Context, _ any, next graphql.Resolver, permission model.Permission) (any, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return nil, ErrUnauthenticated
	}
	if !p.Can(store.Permission(permission)) {
		return nil, &ForbiddenError{Token: p.Name, Permission: store.Permission(permission)}
	}
	return next(ctx)
}
