package store

import (
	"errors"
	"strings"
)

var (
	// ErrNotFound means the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the write would break a uniqueness rule, such as two tokens with one name.
	ErrConflict = errors.New("conflict")
	// ErrLocked means another process holds the data file open.
	ErrLocked = errors.New("data file is locked by another process")
	// ErrUnauthenticated means a presented API token matches no stored token.
	ErrUnauthenticated = errors.New("invalid token")
	// ErrLeaseHeld means another process's attempt holds the job's lease.
	ErrLeaseHeld = errors.New("another process is exporting this job")
	// ErrLeaseLost means the attempt was taken over by another process (its lease ran out):
	// nothing was written; the attempt must stop.
	ErrLeaseLost = errors.New("the export attempt lost its lease to another process")
	// ErrWrongMasterKey means the master key cannot open data sealed by an earlier start.
	ErrWrongMasterKey = errors.New("master key does not match the key this data was sealed with")
)

// FieldError is one invalid input field. Message never repeats a secret value.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// ValidationError lists every invalid field of one request, so a caller can fix them all at once.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return "invalid input: " + strings.Join(msgs, "; ")
}

// fieldErrors collects FieldErrors while a record is checked.
type fieldErrors []FieldError

func (fe *fieldErrors) add(field, message string) {
	*fe = append(*fe, FieldError{Field: field, Message: message})
}

// merge adds the fields of a *ValidationError; nil adds nothing.
func (fe *fieldErrors) merge(err error) {
	var v *ValidationError
	if errors.As(err, &v) {
		*fe = append(*fe, v.Fields...)
	}
}

func (fe fieldErrors) err() error {
	if len(fe) == 0 {
		return nil
	}
	return &ValidationError{Fields: fe}
}
