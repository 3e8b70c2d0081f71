package graph

import (
	"cmp"
	"encoding/json"
	"strconv"

	"github.com/vektah/gqlparser/v2/ast"
)

// work is what a selection set asks of the server once its fragments are expanded. The walk that
// computes it visits every selection of the document once: a fragment is measured the first time
// it is spread and remembered, so fragments that spread others twice cost one visit each, not 2^n.
type work struct {
	// fields counts fields, fragment spreads and inline fragments, each once per place it is
	// used: the work of validating and collecting them grows with it.
	fields int
	// aliases counts fields asked under another name than their own.
	aliases int
	// depth is the deepest nesting of fields.
	depth int
	// complexity is 1 per field, its selections multiplied by the page size for paged lists.
	complexity int
	// once maps each field that may be asked once per request to the response name it is asked
	// under; twice records the first such field asked under two names.
	once  map[string]string
	twice *twiceAsked
	// deferred tells whether a fragment asks for @defer.
	deferred bool
}

// twiceAsked is an expensive field asked under two response names.
type twiceAsked struct{ field, first, second string }

// saturated caps the sums below: a document within the body limit cannot overflow them, and any
// value this large is far over every limit.
const saturated = 1 << 40

func add(a, b int) int { return min(a+b, saturated) }

func mul(a, b int) int {
	if a != 0 && b > saturated/a {
		return saturated
	}
	return a * b
}

// merge adds the work of a selection beside w in the same selection set.
func (w *work) merge(o work) {
	w.fields = add(w.fields, o.fields)
	w.aliases = add(w.aliases, o.aliases)
	w.depth = max(w.depth, o.depth)
	w.complexity = add(w.complexity, o.complexity)
	w.deferred = w.deferred || o.deferred
	if w.twice == nil {
		w.twice = o.twice
	}
	for field, name := range o.once {
		w.askOnce(field, name)
	}
}

func (w *work) askOnce(field, responseName string) {
	first, asked := w.once[field]
	switch {
	case !asked:
		if w.once == nil {
			w.once = map[string]string{}
		}
		w.once[field] = responseName
	case first != responseName && w.twice == nil:
		w.twice = &twiceAsked{field: field, first: first, second: responseName}
	}
}

// fragmentState is a fragment's measure, or where its walk stands.
type fragmentState struct {
	def     *ast.FragmentDefinition
	walking bool
	done    bool
	work    work
}

// measurer walks one parsed (not yet validated) document against the schema. It tolerates
// anything validation would refuse: unknown types, fields and fragments count as leaves.
type measurer struct {
	schema    *ast.Schema
	variables map[string]any
	fragments map[string]*fragmentState
	// cycle names a fragment that spreads itself, directly or not.
	cycle string
	// steps counts the selections visited, to show the walk is linear in the document.
	steps int
}

func newMeasurer(schema *ast.Schema, doc *ast.QueryDocument, variables map[string]any) *measurer {
	m := &measurer{schema: schema, variables: variables, fragments: make(map[string]*fragmentState, len(doc.Fragments))}
	for _, f := range doc.Fragments {
		if _, dup := m.fragments[f.Name]; !dup { // validation refuses duplicates
			m.fragments[f.Name] = &fragmentState{def: f}
		}
	}
	return m
}

// document is the work of every operation and fragment definition: validation walks them all,
// used or not.
func (m *measurer) document(doc *ast.QueryDocument) work {
	var total work
	for _, op := range doc.Operations {
		total.merge(m.operation(op))
	}
	for _, f := range doc.Fragments {
		total.merge(m.fragment(f.Name))
	}
	return total
}

// operation is the work of op, from its root type.
func (m *measurer) operation(op *ast.OperationDefinition) work {
	var root *ast.Definition
	switch op.Operation {
	case ast.Mutation:
		root = m.schema.Mutation
	case ast.Subscription:
		root = m.schema.Subscription
	default:
		root = m.schema.Query
	}
	return m.selectionSet(op.SelectionSet, root)
}

// fragment is the work of the named fragment, measured once: a fragment reached again while
// its own walk is under way spreads itself.
func (m *measurer) fragment(name string) work {
	f := m.fragments[name]
	switch {
	case f == nil: // unknown: validation refuses it
		return work{}
	case f.done:
		return f.work
	case f.walking:
		m.cycle = cmp.Or(m.cycle, name)
		return work{}
	}
	f.walking = true
	f.work = m.selectionSet(f.def.SelectionSet, m.schema.Types[f.def.TypeCondition])
	f.walking, f.done = false, true
	return f.work
}

// selectionSet is the work of set, whose fields belong to parent (nil when unknown).
func (m *measurer) selectionSet(set ast.SelectionSet, parent *ast.Definition) work {
	var w work
	for _, sel := range set {
		m.steps++
		switch s := sel.(type) {
		case *ast.Field:
			w.merge(m.field(s, parent))
		case *ast.InlineFragment:
			typ := parent
			if s.TypeCondition != "" {
				typ = m.schema.Types[s.TypeCondition]
			}
			inner := m.selectionSet(s.SelectionSet, typ)
			inner.fields = add(inner.fields, 1)
			inner.deferred = inner.deferred || s.Directives.ForName("defer") != nil
			w.merge(inner)
		case *ast.FragmentSpread:
			inner := m.fragment(s.Name) // a copy; merge only reads its once map
			inner.fields = add(inner.fields, 1)
			inner.deferred = inner.deferred || s.Directives.ForName("defer") != nil
			w.merge(inner)
		}
	}
	return w
}

// field is the work of f, a field of parent, and of its selections.
func (m *measurer) field(f *ast.Field, parent *ast.Definition) work {
	var def *ast.FieldDefinition
	var typ *ast.Definition
	if parent != nil {
		if def = parent.Fields.ForName(f.Name); def != nil {
			typ = m.schema.Types[def.Type.Name()]
		}
	}
	inner := m.selectionSet(f.SelectionSet, typ)
	w := work{
		fields:     add(inner.fields, 1),
		aliases:    inner.aliases,
		depth:      inner.depth + 1,
		complexity: add(1, mul(m.pageSize(f, parent), inner.complexity)),
		twice:      inner.twice,
		deferred:   inner.deferred,
	}
	// inner.once is dropped: fields that may be asked once are root fields.
	if f.Alias != "" && f.Alias != f.Name {
		w.aliases = add(w.aliases, 1)
	}
	if parent != nil && onceFields[parent.Name+"."+f.Name] {
		w.askOnce(f.Name, cmp.Or(f.Alias, f.Name))
	}
	return w
}

// pageSize is how many items a paged list field asks for: its size argument, or the default the
// resolver applies when it is null or absent. A size the resolver refuses counts 1: it reads
// nothing then (and a value that is not an Int is refused before anything runs).
func (m *measurer) pageSize(f *ast.Field, parent *ast.Definition) int {
	if parent == nil {
		return 1
	}
	p, ok := pagedFields[parent.Name+"."+f.Name]
	if !ok {
		return 1
	}
	arg := f.Arguments.ForName(p.argument)
	if arg == nil || arg.Value == nil {
		return p.byDefault
	}
	switch n, ok := m.intValue(arg.Value); {
	case !ok:
		return p.byDefault
	case n < 1 || n > p.largest:
		return 1
	default:
		return n
	}
}

// intValue is the integer v holds, literally or through a variable.
func (m *measurer) intValue(v *ast.Value) (int, bool) {
	switch v.Kind {
	case ast.IntValue:
		n, err := strconv.Atoi(v.Raw)
		return n, err == nil
	case ast.Variable:
		switch n := m.variables[v.Raw].(type) {
		case json.Number:
			i, err := strconv.Atoi(n.String())
			return i, err == nil
		case float64:
			return int(min(n, saturated)), n == float64(int64(n))
		case int:
			return n, true
		case int64:
			return int(min(n, saturated)), true
		}
	}
	return 0, false
}

// pagedList names a list field's size argument, its default and its largest accepted value.
type pagedList struct {
	argument           string
	byDefault, largest int
}

// pagedFields are the fields whose selections are repeated per item, by how many they ask for.
var pagedFields = map[string]pagedList{
	"Query.auditEvents":      {argument: "first", byDefault: defaultPageSize, largest: maxPageSize},
	"Query.getAllExportJobs": {argument: "limit", byDefault: defaultJobsLimit, largest: maxJobsLimit},
}

// onceFields may be asked once per request: each reads a whole table or the event buffer, walks
// the schema, or reaches a destination over the network.
var onceFields = map[string]bool{
	"Query.getAllExportConfigurations":   true,
	"Query.auditEvents":                  true,
	"Query.eventBuffer":                  true,
	"Query.getAllExportJobs":             true,
	"Query.getAllExportJobTasks":         true,
	"Query.apiTokens":                    true,
	"Query.__schema":                     true,
	"Mutation.verifyExportConfiguration": true,
	"Mutation.runExportNow":              true,
}
