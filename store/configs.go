package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// NotFoundError names the missing record. It matches ErrNotFound with errors.Is.
type NotFoundError struct {
	What string
	ID   string
}

func (e *NotFoundError) Error() string {
	id := e.ID
	if len(id) > 64 { // the id comes from the caller: do not echo an arbitrarily long string
		id = id[:64] + "…"
	}
	return fmt.Sprintf("%s %q not found", e.What, id)
}

func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

func configNotFound(id string) error { return &NotFoundError{What: "export configuration", ID: id} }

// secretAD binds a sealed secret to its configuration.
func secretAD(id string) []byte { return []byte("export-configuration-secret/" + id) }

// CreateConfiguration validates c, gives it an id, timestamps and PENDING status, and stores it
// with its sealed secret (access-key configurations only) in one transaction.
func (s *Store) CreateConfiguration(ctx context.Context, c ExportConfiguration, secret string, by Principal) (ExportConfiguration, error) {
	var errs fieldErrors
	errs.merge(c.Validate())
	s.checkEndpointAllowed(&errs, c.Endpoint)
	if c.Kind.HasSecret() {
		secret = normalizeSecret(c.Kind, secret)
		errs.merge(ValidateSecret(c.Kind, secret))
	}
	now := s.now().UTC()
	if c.StartTime.After(now) {
		errs.add("startTime", "must not be in the future")
	}
	if err := errs.err(); err != nil {
		return ExportConfiguration{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return ExportConfiguration{}, fmt.Errorf("generate id: %w", err)
	}
	c.StartTime = c.StartTime.UTC()
	c.ID = id.String()
	c.CreatedAt, c.UpdatedAt = now, now
	c.CreatedBy, c.UpdatedBy = by.Name, by.Name
	c.ConnectionStatus = ConnectionPending
	c.ConnectionCheckedAt = time.Time{}
	err = s.update(func(tx *bolt.Tx, w *eventWriter) error {
		if err := checkNameFree(tx, c.Name, c.ID); err != nil {
			return err
		}
		// The creation's own audit event is the first the new destination receives, unless it
		// starts earlier.
		c.Cursor = w.next - 1
		if !c.StartTime.IsZero() {
			var err error
			if c.Cursor, err = s.seqBeforeReceived(tx, c.StartTime, c.Cursor); err != nil {
				return err
			}
		}
		if err := putJSON(tx.Bucket(bucketConfigs), c.ID, c); err != nil {
			return err
		}
		if err := w.appendAudit(configurationAudit(by, now, auditCreate, c, nil)); err != nil {
			return err
		}
		if c.Kind.HasSecret() {
			return tx.Bucket(bucketSecrets).Put([]byte(c.ID), s.sealer.seal([]byte(secret), secretAD(c.ID)))
		}
		return nil
	})
	if err != nil {
		return ExportConfiguration{}, fmt.Errorf("store configuration: %w", err)
	}
	return c, nil
}

// Configuration returns the configuration with the given id.
func (s *Store) Configuration(ctx context.Context, id string) (ExportConfiguration, error) {
	var c ExportConfiguration
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		c, err = getConfig(tx, id)
		return err
	})
	return c, err
}

// Configurations returns every configuration, oldest first.
func (s *Store) Configurations(ctx context.Context) ([]ExportConfiguration, error) {
	var out []ExportConfiguration
	err := s.db.View(func(tx *bolt.Tx) error {
		return eachJSON(tx.Bucket(bucketConfigs), func(c ExportConfiguration) error {
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// Change edits a configuration in place. Returning an error abandons the update.
type Change func(c *ExportConfiguration) error

// UpdateConfiguration applies change to the stored configuration and, when newSecret is not nil,
// replaces its secret; the result is validated before anything is written. A change to where or
// how the service writes voids the last connectivity result (status back to PENDING). An update
// that changes nothing writes nothing and keeps updatedAt.
func (s *Store) UpdateConfiguration(ctx context.Context, id string, by Principal, change Change, newSecret *string) (ExportConfiguration, error) {
	return s.updateConfiguration(ctx, id, by, change, newSecret, auditUpdate)
}

// updateConfiguration is UpdateConfiguration recording the change as action.
func (s *Store) updateConfiguration(ctx context.Context, id string, by Principal, change Change, newSecret *string, action string) (ExportConfiguration, error) {
	var updated ExportConfiguration
	err := s.update(func(tx *bolt.Tx, w *eventWriter) error {
		old, err := getConfig(tx, id)
		if err != nil {
			return err
		}
		c := old
		if err := change(&c); err != nil {
			return err
		}
		c.ID, c.Kind, c.CreatedAt, c.CreatedBy, c.Revision, c.Cursor = old.ID, old.Kind, old.CreatedAt, old.CreatedBy, old.Revision, old.Cursor
		c.ScheduledThrough, c.SkippedEvents, c.StartTime, c.LastDigest = old.ScheduledThrough, old.SkippedEvents, old.StartTime, old.LastDigest
		var errs fieldErrors
		errs.merge(c.Validate())
		if c.Endpoint != old.Endpoint {
			s.checkEndpointAllowed(&errs, c.Endpoint)
		}
		secretChanged := false
		if newSecret != nil {
			secret := normalizeSecret(c.Kind, *newSecret)
			newSecret = &secret
			if !c.Kind.HasSecret() {
				errs.add("secretAccessKey", "is not used by assumed-role configurations")
			} else if err := ValidateSecret(c.Kind, secret); err != nil {
				errs.merge(err)
			} else {
				secretChanged = s.secretDiffers(tx, id, secret)
			}
		}
		if err := errs.err(); err != nil {
			return err
		}
		if err := checkNameFree(tx, c.Name, c.ID); err != nil {
			return err
		}
		if c.destination() != old.destination() || secretChanged {
			c.ConnectionStatus, c.ConnectionCheckedAt, c.CheckFailures = ConnectionPending, time.Time{}, 0
			c.Revision = old.Revision + 1
		}
		if c == old && !secretChanged {
			updated = old
			return nil
		}
		c.UpdatedAt, c.UpdatedBy = w.now.UTC(), by.Name
		if err := putJSON(tx.Bucket(bucketConfigs), id, c); err != nil {
			return err
		}
		if err := w.appendAudit(configurationAudit(by, c.UpdatedAt, action, c, changedFields(old, c, secretChanged))); err != nil {
			return err
		}
		if secretChanged {
			if err := tx.Bucket(bucketSecrets).Put([]byte(id), s.sealer.seal([]byte(*newSecret), secretAD(id))); err != nil {
				return err
			}
		}
		updated = c
		return nil
	})
	return updated, err
}

// RecordConnectionCheck stores the result of a connectivity check of the given revision: status
// is ConnectionSuccess or the error text. When the destination has changed since (another
// revision), nothing is written and the current configuration is returned. A check is not an
// edit: updatedAt and updatedBy stay as they were.
func (s *Store) RecordConnectionCheck(ctx context.Context, id string, revision int64, status string, at time.Time) (ExportConfiguration, error) {
	var c ExportConfiguration
	err := s.update(func(tx *bolt.Tx, _ *eventWriter) error {
		var err error
		if c, err = getConfig(tx, id); err != nil {
			return err
		}
		if c.Revision != revision {
			return nil
		}
		c.ConnectionStatus, c.ConnectionCheckedAt = status, at.UTC()
		if status == ConnectionSuccess {
			c.CheckFailures = 0
		} else {
			c.CheckFailures++
		}
		return putJSON(tx.Bucket(bucketConfigs), id, c)
	})
	return c, err
}

// secretDiffers reports whether secret differs from the stored one, so re-sending the same secret
// is not counted as a change.
func (s *Store) secretDiffers(tx *bolt.Tx, id, secret string) bool {
	sealed := tx.Bucket(bucketSecrets).Get([]byte(id))
	if sealed == nil {
		return true
	}
	plain, err := s.sealer.open(sealed, secretAD(id))
	return err != nil || string(plain) != secret
}

// SetEnabled turns exports of a configuration on or off.
func (s *Store) SetEnabled(ctx context.Context, id string, by Principal, enabled bool) (ExportConfiguration, error) {
	action := auditDisable
	if enabled {
		action = auditEnable
	}
	return s.updateConfiguration(ctx, id, by, func(c *ExportConfiguration) error {
		c.Enabled = enabled
		return nil
	}, nil, action)
}

// DeleteConfiguration removes a configuration and its secret, returning what was removed.
func (s *Store) DeleteConfiguration(ctx context.Context, id string, by Principal) (ExportConfiguration, error) {
	var c ExportConfiguration
	err := s.update(func(tx *bolt.Tx, w *eventWriter) error {
		var err error
		if c, err = getConfig(tx, id); err != nil {
			return err
		}
		if err := tx.Bucket(bucketConfigs).Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSecrets).Delete([]byte(id)); err != nil {
			return err
		}
		if err := deleteJobsOf(tx, id); err != nil {
			return err
		}
		return w.appendAudit(configurationAudit(by, w.now.UTC(), auditDelete, c, nil))
	})
	return c, err
}

// Secret opens the sealed secret of a configuration. Only the code that authenticates to the
// destination should call it.
func (s *Store) Secret(ctx context.Context, id string) (string, error) {
	var secret string
	err := s.db.View(func(tx *bolt.Tx) error {
		sealed := tx.Bucket(bucketSecrets).Get([]byte(id))
		if sealed == nil {
			return &NotFoundError{What: "secret of export configuration", ID: id}
		}
		plain, err := s.sealer.open(sealed, secretAD(id))
		if err != nil {
			return fmt.Errorf("secret of export configuration %s: %w", id, err)
		}
		secret = string(plain)
		return nil
	})
	return secret, err
}

// normalizeSecret stores a SAS token without the '?' the portal copies with it.
func normalizeSecret(kind Kind, secret string) string {
	if kind == KindADLSSASToken {
		return strings.TrimPrefix(secret, "?")
	}
	return secret
}

// checkNameFree refuses a name another configuration has.
func checkNameFree(tx *bolt.Tx, name, id string) error {
	if name == "" {
		return nil
	}
	return eachJSON(tx.Bucket(bucketConfigs), func(other ExportConfiguration) error {
		if other.Name == name && other.ID != id {
			return fmt.Errorf("an export configuration named %q already exists: %w", name, ErrConflict)
		}
		return nil
	})
}

func getConfig(tx *bolt.Tx, id string) (ExportConfiguration, error) {
	var c ExportConfiguration
	if _, err := uuid.Parse(id); err != nil {
		return c, configNotFound(id)
	}
	v := tx.Bucket(bucketConfigs).Get([]byte(id))
	if v == nil {
		return c, configNotFound(id)
	}
	if err := json.Unmarshal(v, &c); err != nil {
		return c, fmt.Errorf("decode configuration %s: %w", id, err)
	}
	return c, nil
}

// eachJSON decodes every record of b, in key order, and calls fn with it; an error of fn stops.
func eachJSON[T any](b *bolt.Bucket, fn func(T) error) error {
	return b.ForEach(func(k, raw []byte) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode record %q: %w", k, err)
		}
		return fn(v)
	})
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put([]byte(key), data)
}

// checkEndpointAllowed adds the server's refusal of a well-formed endpoint to errs (a malformed
// one is already reported by Validate).
func (s *Store) checkEndpointAllowed(errs *fieldErrors, endpoint string) {
	if validateEndpoint(endpoint) != "" {
		return
	}
	if err := s.endpoints.Check(endpoint); err != nil {
		errs.add("endpoint", err.Error())
	}
}
