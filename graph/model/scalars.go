package model

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// InputError is a scalar argument that does not parse; clients see its message as
// BAD_USER_INPUT.
type InputError struct{ Message string }

func (e *InputError) Error() string { return e.Message }

// MarshalDateTime writes t as RFC 3339 in UTC.
func MarshalDateTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		io.WriteString(w, `"`+t.UTC().Format(time.RFC3339Nano)+`"`)
	})
}

// UnmarshalDateTime reads an RFC 3339 string.
func UnmarshalDateTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, &InputError{Message: fmt.Sprintf("a DateTime must be an RFC 3339 string, not %T", v)}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, &InputError{Message: fmt.Sprintf("%q is not an RFC 3339 timestamp such as 2026-11-21T12:00:00Z", s)}
	}
	return t, nil
}

// MarshalJSON writes raw JSON as it is (null when empty).
func MarshalJSON(raw json.RawMessage) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		if len(raw) == 0 {
			io.WriteString(w, "null")
			return
		}
		w.Write(raw)
	})
}

// UnmarshalJSON accepts any JSON value.
func UnmarshalJSON(v any) (json.RawMessage, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, &InputError{Message: "not a JSON value"}
	}
	return raw, nil
}

// ExportIntervalName is an interval written as an enum value or a string (Immuta's ADLS requests
// quote it). It is read as it is written; the store says whether it names an interval.
type ExportIntervalName string

// UnmarshalGQL reads an enum value or a string.
func (n *ExportIntervalName) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return &InputError{Message: fmt.Sprintf("interval must be an interval name such as EVERY_12_HOURS, not %T", v)}
	}
	*n = ExportIntervalName(s)
	return nil
}

// MarshalGQL writes the name as a string.
func (n ExportIntervalName) MarshalGQL(w io.Writer) { graphql.MarshalString(string(n)).MarshalGQL(w) }
