package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/auditexport/auditexport/graph/model"
	"github.com/auditexport/auditexport/store"
)

// Error codes in extensions.code. Clients branch on these, not on messages.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeNotFound        = "NOT_FOUND"
	CodeConflict        = "CONFLICT"
	CodeInternal        = "INTERNAL_SERVER_ERROR"
	CodeBadRequest      = "BAD_REQUEST"
	CodeUnavailable     = "STORE_UNAVAILABLE"
)

// errInternal is all a client learns of an unexpected failure; the detail goes to the log.
var errInternal = errors.New("internal server error")

// presentError maps errors to what clients see. Known errors keep their message and get a code;
// gqlgen's own parse and validation errors pass through; anything else is logged and replaced
// by "internal server error", so SDK internals, file paths and secrets never reach a client.
func presentError(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		var (
			validation *store.ValidationError
			forbidden  *ForbiddenError
			badScalar  *model.InputError
		)
		switch {
		case errors.As(err, &validation):
			present(gqlErr, validation.Error(), CodeBadUserInput)
			fields := map[string]string{}
			for _, f := range validation.Fields {
				fields[f.Field] = f.Message
			}
			gqlErr.Extensions["fields"] = fields
		case errors.As(err, &badScalar):
			present(gqlErr, badScalar.Error(), CodeBadUserInput)
		case errors.Is(err, store.ErrDisabled):
			present(gqlErr, "the export configuration is disabled; enable it first", CodeBadUserInput)
		case errors.Is(err, store.ErrNotFound):
			present(gqlErr, innermostMessage(err), CodeNotFound)
		case errors.Is(err, store.ErrConflict):
			present(gqlErr, innermostMessage(err), CodeConflict)
		case errors.As(err, &forbidden):
			present(gqlErr, forbidden.Error(), CodeForbidden)
		case errors.Is(err, ErrUnauthenticated):
			present(gqlErr, ErrUnauthenticated.Error(), CodeUnauthenticated)
		case errors.Is(err, errInternal):
			present(gqlErr, errInternal.Error(), CodeInternal)
		case errors.Is(err, store.ErrUnavailable):
			// The database out of reach (replicas) or a damaged data file: nothing was changed,
			// and the client may retry; the cause is the operator's, in the log.
			logger.WarnContext(ctx, "graphql request failed: the store is unavailable", "path", gqlErr.Path.String(), "error", err)
			present(gqlErr, "the store is unavailable now; nothing was changed: retry later", CodeUnavailable)
		case gqlErr.Err == nil:
			// Made by gqlgen while parsing or validating the request. The JSON decoder's message
			// quotes the whole body, which may hold a secret: replace it.
			if strings.HasPrefix(gqlErr.Message, "json request body could not be decoded") {
				present(gqlErr, "request body is not valid JSON", CodeBadRequest)
			}
			// Variable coercion errors say only "cannot be null": name the variable they are about.
			if len(gqlErr.Path) > 1 && gqlErr.Path[0] == ast.PathName("variable") {
				gqlErr.Message = "variable $" + strings.TrimPrefix(gqlErr.Path[1:].String(), ".") + ": " + gqlErr.Message
			}
		default:
			logger.ErrorContext(ctx, "graphql request failed", "path", gqlErr.Path.String(), "error", err)
			present(gqlErr, errInternal.Error(), CodeInternal)
		}
		return gqlErr
	}
}

// innermostMessage is the message of a store error without the wrapping context resolvers add,
// the location and path gqlgen's error adds, or the sentinel's own ": conflict".
func innermostMessage(err error) string {
	var nf *store.NotFoundError
	if errors.As(err, &nf) {
		return nf.Error()
	}
	if g, ok := err.(*gqlerror.Error); ok && g.Err != nil {
		err = g.Err
	}
	return strings.TrimSuffix(err.Error(), ": "+store.ErrConflict.Error())
}

func present(e *gqlerror.Error, message, code string) {
	e.Message = message
	e.Err = nil
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}

// recoverPanic turns a panic in a resolver into an internal error, logging its stack.
func recoverPanic(logger *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, v any) error {
		logger.ErrorContext(ctx, "panic in graphql resolver", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		return errInternal
	}
}
