package graph

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// Codes of requests refused for the work they ask for.
const (
	// CodeLimitExceeded: the document asks for more than a limit allows; nothing ran.
	// extensions.limit names the limit: tokens, fields, aliases, depth, complexity or once.
	CodeLimitExceeded = "LIMIT_EXCEEDED"
	// CodeResponseTooLarge: the answer would exceed Limits.MaxResponseBytes; no data is returned.
	CodeResponseTooLarge = "RESPONSE_TOO_LARGE"
	// CodeCancelled: the request ended (the client went away) before the field was resolved.
	CodeCancelled = "REQUEST_CANCELLED"
)

func init() {
	// Refusals before execution answer 422, like gqlgen's parse and validation errors.
	errcode.RegisterErrorType(CodeLimitExceeded, errcode.KindProtocol)
}

// Limits bound the work one GraphQL request may ask for. Every limit but MaxResponseBytes is
// checked on the parsed document before gqlparser validates it (some validation rules are
// quadratic in the fields of a selection set) and before anything runs. Zero fields take the
// defaults of DefaultLimits.
type Limits struct {
	// MaxTokens bounds the lexical tokens of the query. Default 10,000 (GraphiQL's
	// introspection query has about 300).
	MaxTokens int
	// MaxFields bounds the fields, fragment spreads and inline fragments of the document, each
	// counted once per place its fragment is spread. Default 1,000.
	MaxFields int
	// MaxAliases bounds the fields of the operation asked under another name. Default 50.
	MaxAliases int
	// MaxDepth bounds how deeply the operation's fields nest. Default 15, enough for GraphiQL's
	// introspection.
	MaxDepth int
	// MaxComplexity bounds the operation's complexity: 1 per field, the selections of a paged
	// list (auditEvents, getAllExportJobs) multiplied by the items it asks for. Default 25,000:
	// a page of 1,000 audit events with every field.
	MaxComplexity int
	// MaxResponseBytes bounds the JSON answer; a request whose answer grows past it stops and
	// answers RESPONSE_TOO_LARGE. Default 16 MiB.
	MaxResponseBytes int64
}

// DefaultLimits returns the limits NewHandler applies by default.
func DefaultLimits() Limits {
	return Limits{MaxTokens: 10_000, MaxFields: 1_000, MaxAliases: 50, MaxDepth: 15, MaxComplexity: 25_000, MaxResponseBytes: 16 << 20}
}

func (l Limits) withDefaults() Limits {
	def := DefaultLimits()
	l.MaxTokens = cmp.Or(max(l.MaxTokens, 0), def.MaxTokens)
	l.MaxFields = cmp.Or(max(l.MaxFields, 0), def.MaxFields)
	l.MaxAliases = cmp.Or(max(l.MaxAliases, 0), def.MaxAliases)
	l.MaxDepth = cmp.Or(max(l.MaxDepth, 0), def.MaxDepth)
	l.MaxComplexity = cmp.Or(max(l.MaxComplexity, 0), def.MaxComplexity)
	l.MaxResponseBytes = cmp.Or(max(l.MaxResponseBytes, 0), def.MaxResponseBytes)
	return l
}

// queryLimits refuses documents that ask for more than its limits allow. It parses the query
// itself, with a token limit, and measures it in one linear walk, before gqlgen parses and
// validates it (a second parse, as cheap as the first, skipped for short texts in the cache).
type queryLimits struct {
	schema *ast.Schema
	limits Limits
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = queryLimits{}

func (queryLimits) ExtensionName() string                   { return "QueryLimits" }
func (queryLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (q queryLimits) MutateOperationParameters(_ context.Context, params *graphql.RawParams) *gqlerror.Error {
	_, err := q.check(params)
	return err
}

// check measures the request's document; a document that does not parse is left to gqlgen,
// which reports the same syntax error. The measurer is returned for tests.
func (q queryLimits) check(params *graphql.RawParams) (*measurer, *gqlerror.Error) {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: params.Query}, q.limits.MaxTokens)
	if err != nil {
		if strings.Contains(err.Error(), "exceeded token limit") {
			return nil, limitError("tokens", q.limits.MaxTokens, 0,
				fmt.Sprintf("the query has more tokens than the limit of %d", q.limits.MaxTokens))
		}
		return nil, nil
	}
	m := newMeasurer(q.schema, doc, params.Variables)
	total := m.document(doc)
	if m.cycle != "" {
		return m, validationError(fmt.Sprintf("fragment %s spreads itself", m.cycle))
	}
	if total.deferred {
		return m, validationError("@defer is not supported: ask for the fields without it")
	}
	l := q.limits
	if total.fields > l.MaxFields {
		return m, limitError("fields", l.MaxFields, total.fields, fmt.Sprintf(
			"the document selects %d fields, counting fragments once per spread, which exceeds the limit of %d", total.fields, l.MaxFields))
	}
	op := doc.Operations.ForName(params.OperationName)
	if op == nil {
		return m, nil // gqlgen answers "operation not found"
	}
	w := m.operation(op)
	switch {
	case w.aliases > l.MaxAliases:
		return m, limitError("aliases", l.MaxAliases, w.aliases, fmt.Sprintf(
			"the operation asks for %d fields under aliases, which exceeds the limit of %d", w.aliases, l.MaxAliases))
	case w.depth > l.MaxDepth:
		return m, limitError("depth", l.MaxDepth, w.depth, fmt.Sprintf(
			"operation nests %d levels deep, more than the limit of %d", w.depth, l.MaxDepth))
	case w.twice != nil:
		return m, limitError("once", 1, 2, fmt.Sprintf(
			"%s may be asked once per request, which it exceeds: it is asked as %s and as %s", w.twice.field, w.twice.first, w.twice.second))
	case w.complexity > l.MaxComplexity:
		return m, limitError("complexity", l.MaxComplexity, w.complexity, fmt.Sprintf(
			"operation has complexity %d, which exceeds the limit of %d (paged lists count their selections once per item asked for)", w.complexity, l.MaxComplexity))
	}
	return m, nil
}

func limitError(limit string, maximum, actual int, message string) *gqlerror.Error {
	ext := map[string]any{"code": CodeLimitExceeded, "limit": limit, "max": maximum}
	if actual > 0 {
		ext["actual"] = actual
	}
	return &gqlerror.Error{Message: message, Extensions: ext}
}

func validationError(message string) *gqlerror.Error {
	return &gqlerror.Error{Message: message, Extensions: map[string]any{"code": errcode.ValidationFailed}}
}
