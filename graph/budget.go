package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// responseBudget stops a request's execution when its client goes away or when its answer grows
// past maxBytes. gqlgen resolves every field it was asked for and builds the whole answer in
// memory before writing it, and it does not look at the request's context between fields: this
// extension does, before each field, and charges each resolved value's JSON size to the
// request, so the work ends at the first field past the budget instead of after the last.
type responseBudget struct{ maxBytes int64 }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
	graphql.FieldInterceptor
} = responseBudget{}

func (responseBudget) ExtensionName() string                   { return "ResponseBudget" }
func (responseBudget) Validate(graphql.ExecutableSchema) error { return nil }

// errResponseTooLarge is the cause a request's context is cancelled with when its answer grows
// past the budget.
var errResponseTooLarge = errors.New("response too large")

// spending is one request's budget.
type spending struct {
	max    int64
	spent  atomic.Int64
	cancel context.CancelCauseFunc
}

type spendingKey struct{}

// charge spends n bytes, and cancels the request once it has spent more than its budget.
func (s *spending) charge(n int64) bool {
	if s.spent.Add(n) <= s.max {
		return true
	}
	s.cancel(errResponseTooLarge)
	return false
}

func (b responseBudget) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s := &spending{max: b.maxBytes, cancel: cancel}
	resp := next(context.WithValue(ctx, spendingKey{}, s))
	if resp != nil && (s.spent.Load() > s.max || int64(len(resp.Data)) > s.max) {
		// Whatever was resolved is dropped: a partial answer would look complete to a client
		// that does not read the errors.
		return &graphql.Response{Errors: gqlerror.List{ResponseTooLargeError(b.maxBytes)}}
	}
	return resp
}

func (b responseBudget) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	if ctx.Err() != nil {
		return nil, stoppedError(ctx, b.maxBytes)
	}
	res, err := next(ctx)
	s, ok := ctx.Value(spendingKey{}).(*spending)
	if err != nil || !ok {
		return res, err
	}
	size := encodedSize(res)
	if fc := graphql.GetFieldContext(ctx); fc != nil && fc.Field.Field != nil {
		size += int64(len(fc.Field.Alias)) + 4 // "alias":,
	}
	if !s.charge(size) {
		return nil, ResponseTooLargeError(b.maxBytes)
	}
	return res, nil
}

// ResponseTooLargeError is the error of an answer larger than maxBytes; the server's response
// writer answers it too when the encoded answer is larger than the estimate.
func ResponseTooLargeError(maxBytes int64) *gqlerror.Error {
	return &gqlerror.Error{
		Message:    fmt.Sprintf("the response exceeds the limit of %d bytes: ask for fewer fields or smaller pages (auditEvents first)", maxBytes),
		Extensions: map[string]any{"code": CodeResponseTooLarge, "max": maxBytes},
	}
}

// stoppedError is the error of a field not resolved because its request had ended. Each field
// gets its own: gqlgen adds the field's location to the error it is given.
func stoppedError(ctx context.Context, maxBytes int64) *gqlerror.Error {
	if errors.Is(context.Cause(ctx), errResponseTooLarge) {
		return ResponseTooLargeError(maxBytes)
	}
	return &gqlerror.Error{Message: "the request ended before this field was resolved", Extensions: map[string]any{"code": CodeCancelled}}
}

// encodedSize estimates the bytes a resolved value takes in the JSON answer: exactly for strings
// and JSON values (counting the escapes encoding/json writes for <, > and &), a small constant
// for numbers, booleans, enums and the braces of objects and lists, whose fields are charged
// as they resolve.
func encodedSize(v any) int64 {
	switch v := v.(type) {
	case string:
		return escapedSize(v, false)
	case *string:
		if v != nil {
			return escapedSize(*v, false)
		}
	case json.RawMessage:
		return escapedSize(v, true)
	case time.Time, *time.Time:
		return 32
	}
	return 8
}

// escapedSize is the length of s once written as a JSON string, or of the JSON value s when raw.
func escapedSize[T ~string | ~[]byte](s T, raw bool) int64 {
	n := int64(len(s))
	if !raw {
		n += 2 // quotes
	}
	for i := range len(s) {
		switch c := s[i]; {
		case c == '<' || c == '>' || c == '&':
			n += 5 // \u003c
		case raw:
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
			n++
		case c < 0x20:
			n += 5
		}
	}
	return n
}
