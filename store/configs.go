package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
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
// with its sealed secret and the audit event of its creation in one transaction.
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
	c.ConnectionStatus, c.ConnectionCheckedAt, c.NextCheckAt = ConnectionPending, time.Time{}, time.Time{}
	c.Cursor, c.ScheduledThrough, c.SkippedEvents, c.Revision, c.LastDigest, c.CheckFailures = 0, time.Time{}, 0, 0, DigestRef{}, 0
	var created ExportConfiguration
	err = s.update(ctx, func(tx Tx) error {
		created = c
		if err := checkNameFree(tx, created.Name, created.ID); err != nil {
			return err
		}
		stats, err := tx.EventStats()
		if err != nil {
			return err
		}
		// The creation's own audit event is the first the new destination receives, unless it
		// starts earlier.
		created.Cursor = stats.Head
		if !created.StartTime.IsZero() {
			if created.Cursor, err = seqBeforeReceived(tx, created.StartTime, stats.Head); err != nil {
				return err
			}
		}
		if err := putConfig(tx, &created); err != nil {
			return err
		}
		if err := s.auditTo(tx)(configurationAudit(by, now, auditCreate, created, nil)); err != nil {
			return err
		}
		if created.Kind.HasSecret() {
			return tx.PutSecret(created.ID, s.sealer.seal([]byte(secret), secretAD(created.ID)))
		}
		return nil
	})
	if err != nil {
		return ExportConfiguration{}, fmt.Errorf("store configuration: %w", err)
	}
	return created, nil
}

// Configuration returns the configuration with the given id.
func (s *Store) Configuration(ctx context.Context, id string) (ExportConfiguration, error) {
	var c ExportConfiguration
	err := s.view(ctx, func(tx ReadTx) error {
		var err error
		c, err = getConfig(tx, id)
		return err
	})
	return c, err
}

// Configurations returns every configuration, oldest first.
func (s *Store) Configurations(ctx context.Context) ([]ExportConfiguration, error) {
	var out []ExportConfiguration
	err := s.view(ctx, func(tx ReadTx) error {
		out = out[:0]
		return tx.Configs(func(c ExportConfiguration) bool {
			out = append(out, c)
			return true
		})
	})
	return out, err
}

// Change edits a configuration in place. Returning an error abandons the update.
type Change func(c *ExportConfiguration) error

// UpdateConfiguration applies change to the stored configuration and, when newSecret is not nil,
// replaces its secret; see Configurations.UpdateConfiguration.
func (s *Store) UpdateConfiguration(ctx context.Context, id string, by Principal, change Change, newSecret *string) (ExportConfiguration, error) {
	return s.updateConfiguration(ctx, id, by, change, newSecret, auditUpdate)
}

// updateConfiguration is UpdateConfiguration recording the change as action.
func (s *Store) updateConfiguration(ctx context.Context, id string, by Principal, change Change, newSecret *string, action string) (ExportConfiguration, error) {
	var updated ExportConfiguration
	err := s.update(ctx, func(tx Tx) error {
		old, err := getConfig(tx, id)
		if err != nil {
			return err
		}
		c := old
		if err := change(&c); err != nil {
			return err
		}
		keepServiceFields(&c, old)
		var errs fieldErrors
		errs.merge(c.Validate())
		if c.Endpoint != old.Endpoint {
			s.checkEndpointAllowed(&errs, c.Endpoint)
		}
		secretChanged := false
		var secret string
		if newSecret != nil {
			secret = normalizeSecret(c.Kind, *newSecret)
			if !c.Kind.HasSecret() {
				errs.add("secretAccessKey", "is not used by assumed-role configurations")
			} else if err := ValidateSecret(c.Kind, secret); err != nil {
				errs.merge(err)
			} else if secretChanged, err = s.secretDiffers(tx, id, secret); err != nil {
				return err
			}
		}
		if err := errs.err(); err != nil {
			return err
		}
		if err := checkNameFree(tx, c.Name, c.ID); err != nil {
			return err
		}
		if c.destination() != old.destination() || secretChanged {
			c.ConnectionStatus, c.ConnectionCheckedAt, c.CheckFailures, c.NextCheckAt = ConnectionPending, time.Time{}, 0, time.Time{}
			c.Revision = old.Revision + 1
		}
		if c == old && !secretChanged {
			updated = old
			return nil
		}
		now := s.txNow(tx).UTC()
		c.UpdatedAt, c.UpdatedBy = now, by.Name
		if err := putConfig(tx, &c); err != nil {
			return err
		}
		if err := s.auditTo(tx)(configurationAudit(by, now, action, c, changedFields(old, c, secretChanged))); err != nil {
			return err
		}
		if secretChanged {
			if err := tx.PutSecret(id, s.sealer.seal([]byte(secret), secretAD(id))); err != nil {
				return err
			}
		}
		updated = c
		return nil
	})
	return updated, err
}

// keepServiceFields restores, after a caller's change, the fields only the service sets.
func keepServiceFields(c *ExportConfiguration, old ExportConfiguration) {
	c.ID, c.Kind, c.CreatedAt, c.CreatedBy, c.Revision, c.Cursor = old.ID, old.Kind, old.CreatedAt, old.CreatedBy, old.Revision, old.Cursor
	c.ScheduledThrough, c.SkippedEvents, c.StartTime, c.LastDigest = old.ScheduledThrough, old.SkippedEvents, old.StartTime, old.LastDigest
	c.ConnectionStatus, c.ConnectionCheckedAt, c.CheckFailures, c.NextCheckAt = old.ConnectionStatus, old.ConnectionCheckedAt, old.CheckFailures, old.NextCheckAt
	c.UpdatedAt, c.UpdatedBy = old.UpdatedAt, old.UpdatedBy
	c.Reindex()
}

// RecordConnectionCheck stores the result of a connectivity check; see the contract.
func (s *Store) RecordConnectionCheck(ctx context.Context, id string, revision int64, status string, at, next time.Time) (ExportConfiguration, error) {
	var c ExportConfiguration
	err := s.update(ctx, func(tx Tx) error {
		var err error
		if c, err = getConfig(tx, id); err != nil {
			return err
		}
		if c.Revision != revision {
			return nil
		}
		c.ConnectionStatus, c.ConnectionCheckedAt = status, at.UTC()
		if !next.IsZero() {
			c.NextCheckAt = next.UTC()
		}
		if status == ConnectionSuccess {
			c.CheckFailures = 0
		} else {
			c.CheckFailures++
		}
		return putConfig(tx, &c)
	})
	return c, err
}

// ClaimDueChecks claims the background checks due at now; see the contract.
func (s *Store) ClaimDueChecks(ctx context.Context, now time.Time, hold time.Duration, limit int) ([]ExportConfiguration, error) {
	var claimed []ExportConfiguration
	err := s.update(ctx, func(tx Tx) error {
		claimed = claimed[:0]
		if err := tx.EnabledConfigsByCheckDue(func(c ExportConfiguration) bool {
			if c.NextCheckAt.After(now) || len(claimed) >= limit {
				return false
			}
			claimed = append(claimed, c)
			return true
		}); err != nil {
			return err
		}
		for i := range claimed {
			claimed[i].NextCheckAt = now.Add(hold).UTC()
			if err := putConfig(tx, &claimed[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return claimed, err
}

// secretDiffers reports whether secret differs from the stored one, so re-sending the same secret
// is not counted as a change.
func (s *Store) secretDiffers(tx ReadTx, id, secret string) (bool, error) {
	sealed, found, err := tx.Secret(id)
	if err != nil || !found {
		return true, err
	}
	plain, err := s.sealer.open(sealed, secretAD(id))
	return err != nil || string(plain) != secret, nil
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

// DeleteConfiguration removes a configuration, its secret, jobs and tasks, returning what was
// removed.
func (s *Store) DeleteConfiguration(ctx context.Context, id string, by Principal) (ExportConfiguration, error) {
	var c ExportConfiguration
	err := s.update(ctx, func(tx Tx) error {
		var err error
		if c, err = getConfig(tx, id); err != nil {
			return err
		}
		var jobs []string
		if err := tx.JobsOf(id, func(j ExportJob) bool {
			jobs = append(jobs, j.ID)
			return true
		}); err != nil {
			return err
		}
		for _, job := range jobs {
			if err := tx.DeleteJob(job); err != nil {
				return err
			}
		}
		if err := tx.DeleteConfig(id); err != nil {
			return err
		}
		now := s.txNow(tx).UTC()
		return s.auditTo(tx)(configurationAudit(by, now, auditDelete, c, nil))
	})
	return c, err
}

// Secret opens the sealed secret of a configuration. Only the code that authenticates to the
// destination should call it.
func (s *Store) Secret(ctx context.Context, id string) (string, error) {
	var secret string
	err := s.view(ctx, func(tx ReadTx) error {
		sealed, found, err := tx.Secret(id)
		if err != nil {
			return err
		}
		if !found {
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
func checkNameFree(tx ReadTx, name, id string) error {
	if name == "" {
		return nil
	}
	other, found, err := tx.ConfigIDByName(name)
	if err != nil {
		return err
	}
	if found && other != id {
		return fmt.Errorf("an export configuration named %q already exists: %w", name, ErrConflict)
	}
	return nil
}

func getConfig(tx ReadTx, id string) (ExportConfiguration, error) {
	if _, err := uuid.Parse(id); err != nil {
		return ExportConfiguration{}, configNotFound(id)
	}
	c, found, err := tx.Config(id)
	if err != nil {
		return c, fmt.Errorf("read configuration %s: %w", id, err)
	}
	if !found {
		return c, configNotFound(id)
	}
	return c, nil
}

// putConfig brings c's derived fields up to date and stores it.
func putConfig(tx Tx, c *ExportConfiguration) error {
	c.Reindex()
	return tx.PutConfig(*c)
}

// checkEndpointAllowed adds the server's refusal of a well-formed endpoint to errs (a malformed
// one is already reported by Validate).
func (s *Store) checkEndpointAllowed(errs *fieldErrors, endpoint string) {
	if validateEndpoint(endpoint) != "" && validateBlobEndpoint(endpoint) != "" {
		return
	}
	if err := s.endpoints.Check(endpoint); err != nil {
		errs.add("endpoint", err.Error())
	}
}
