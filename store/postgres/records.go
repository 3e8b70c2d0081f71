package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/auditexport/auditexport/store"
)

// Configurations, tokens, jobs and tasks: each a row holding the store's JSON record beside the
// columns the engine's indexes order it by (migrations/00001_schema.sql).

// Meta returns a metadata value, nil when absent.
func (r *readTx) Meta(key string) ([]byte, error) {
	var v []byte
	err := r.tx.QueryRow(r.ctx, "SELECT value FROM meta WHERE key = $1", key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return v, err
}

// PutMeta sets a metadata value.
func (w *writeTx) PutMeta(key string, value []byte) error {
	_, err := w.tx.Exec(w.ctx, "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", key, value)
	return err
}

// getRecord decodes the JSON record the query returns, if any.
func getRecord[T any](r *readTx, sql string, args ...any) (T, bool, error) {
	var v T
	var raw []byte
	err := r.tx.QueryRow(r.ctx, sql, args...).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, false, nil
	}
	if err != nil {
		return v, false, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, false, fmt.Errorf("decode record: %w", err)
	}
	return v, true, nil
}

// pageSizes: the first page is small, since many callers stop at the first record or so (the
// newest job, the lowest cursor); later pages grow, so a long iteration costs few round trips.
var pageSizes = []int{8, 64, 512, 4096}

// eachRecord iterates the records a keyset query returns, in pages, until fn returns false.
// first returns the first page, next the following ones; in both $1 is the page size and args
// follow, and next has the key of the previous page's last row after them. Each row is the
// record's JSON followed by its keys columns.
func eachRecord[T any](r *readTx, first, next string, args []any, keys int, fn func(T) bool) error {
	var after []any
	for page := 0; ; page++ {
		size := pageSizes[min(page, len(pageSizes)-1)]
		sql, params := first, append([]any{size}, args...)
		if page > 0 {
			sql, params = next, append(params, after...)
		}
		rows, err := r.tx.Query(r.ctx, sql, params...)
		if err != nil {
			return err
		}
		var batch []T
		var raw []byte
		key := make([]any, keys)
		dest := []any{&raw}
		for i := range key {
			dest = append(dest, &key[i])
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return err
			}
			var v T
			if err := json.Unmarshal(raw, &v); err != nil {
				rows.Close()
				return fmt.Errorf("decode record: %w", err)
			}
			batch = append(batch, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, v := range batch {
			if !fn(v) {
				return nil
			}
		}
		if len(batch) < size {
			return nil
		}
		after = append(after[:0], key...)
	}
}

// Config returns a configuration.
func (r *readTx) Config(id string) (store.ExportConfiguration, bool, error) {
	return getRecord[store.ExportConfiguration](r, "SELECT record FROM export_configurations WHERE id = $1", id)
}

// ConfigIDByName finds a configuration by name.
func (r *readTx) ConfigIDByName(name string) (string, bool, error) {
	var id string
	err := r.tx.QueryRow(r.ctx, "SELECT id FROM export_configurations WHERE name = $1", name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return id, err == nil, err
}

// Configs iterates configurations in id order.
func (r *readTx) Configs(fn func(store.ExportConfiguration) bool) error {
	return eachRecord(r,
		"SELECT record, id FROM export_configurations ORDER BY id LIMIT $1",
		"SELECT record, id FROM export_configurations WHERE id > $2 ORDER BY id LIMIT $1", nil, 1, fn)
}

// configIndexes are the orders of the enabled configurations' indexes.
var configIndexes = map[string]string{"cursor": "cursor_seq", "check": "next_check_at", "schedule": "schedule_due_at"}

// enabledConfigsBy iterates the enabled configurations in the order of an index.
func (r *readTx) enabledConfigsBy(index string, fn func(store.ExportConfiguration) bool) error {
	col := configIndexes[index]
	return eachRecord(r,
		"SELECT record, "+col+", id FROM export_configurations WHERE enabled ORDER BY "+col+", id LIMIT $1",
		"SELECT record, "+col+", id FROM export_configurations WHERE enabled AND ("+col+", id) > ($2, $3) ORDER BY "+col+", id LIMIT $1",
		nil, 2, fn)
}

func (r *readTx) EnabledConfigsByCursor(fn func(store.ExportConfiguration) bool) error {
	return r.enabledConfigsBy("cursor", fn)
}

func (r *readTx) EnabledConfigsByCheckDue(fn func(store.ExportConfiguration) bool) error {
	return r.enabledConfigsBy("check", fn)
}

func (r *readTx) EnabledConfigsByScheduleDue(fn func(store.ExportConfiguration) bool) error {
	return r.enabledConfigsBy("schedule", fn)
}

// Secret returns a configuration's sealed secret.
func (r *readTx) Secret(configID string) ([]byte, bool, error) {
	var v []byte
	err := r.tx.QueryRow(r.ctx, "SELECT sealed FROM export_configuration_secrets WHERE config_id = $1", configID).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	return v, err == nil, err
}

// PutConfig stores a configuration and its index columns; a name another has is ErrConflict
// (the unique index).
func (w *writeTx) PutConfig(c store.ExportConfiguration) error {
	record, err := json.Marshal(c)
	if err != nil {
		return err
	}
	var name *string
	if c.Name != "" {
		name = &c.Name
	}
	_, err = w.tx.Exec(w.ctx, `INSERT INTO export_configurations (id, name, enabled, cursor_seq, next_check_at, schedule_due_at, record)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, enabled = EXCLUDED.enabled, cursor_seq = EXCLUDED.cursor_seq,
			next_check_at = EXCLUDED.next_check_at, schedule_due_at = EXCLUDED.schedule_due_at, record = EXCLUDED.record`,
		c.ID, name, c.Enabled, int64(c.Cursor), c.NextCheckAt, c.ScheduleDueAt, string(record))
	if sqlState(err) == "23505" {
		return fmt.Errorf("an export configuration named %q already exists: %w", c.Name, store.ErrConflict)
	}
	return err
}

// DeleteConfig removes a configuration and, by cascade, its secret.
func (w *writeTx) DeleteConfig(id string) error {
	_, err := w.tx.Exec(w.ctx, "DELETE FROM export_configurations WHERE id = $1", id)
	return err
}

// PutSecret stores a configuration's sealed secret.
func (w *writeTx) PutSecret(configID string, sealed []byte) error {
	_, err := w.tx.Exec(w.ctx, `INSERT INTO export_configuration_secrets (config_id, sealed) VALUES ($1, $2)
		ON CONFLICT (config_id) DO UPDATE SET sealed = EXCLUDED.sealed`, configID, sealed)
	return err
}

// Token returns a token by id.
func (r *readTx) Token(id string) (store.Token, bool, error) {
	return getRecord[store.Token](r, "SELECT record FROM api_tokens WHERE id = $1", id)
}

// TokenIDByName finds a token by name, case-insensitively.
func (r *readTx) TokenIDByName(name string) (string, bool, error) {
	var id string
	err := r.tx.QueryRow(r.ctx, "SELECT id FROM api_tokens WHERE name_key = $1", strings.ToLower(name)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return id, err == nil, err
}

// Tokens iterates every token.
func (r *readTx) Tokens(fn func(store.Token) bool) error {
	return eachRecord(r,
		"SELECT record, id FROM api_tokens ORDER BY id LIMIT $1",
		"SELECT record, id FROM api_tokens WHERE id > $2 ORDER BY id LIMIT $1", nil, 1, fn)
}

// PutToken stores a token; a name another token has (in any case) is ErrConflict.
func (w *writeTx) PutToken(t store.Token) error {
	record, err := json.Marshal(t)
	if err != nil {
		return err
	}
	_, err = w.tx.Exec(w.ctx, `INSERT INTO api_tokens (id, name_key, record) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET name_key = EXCLUDED.name_key, record = EXCLUDED.record`,
		t.ID, strings.ToLower(t.Name), string(record))
	if sqlState(err) == "23505" {
		return fmt.Errorf("a token named %q already exists: %w", t.Name, store.ErrConflict)
	}
	return err
}

// DeleteToken removes a token.
func (w *writeTx) DeleteToken(id string) error {
	_, err := w.tx.Exec(w.ctx, "DELETE FROM api_tokens WHERE id = $1", id)
	return err
}

// Job returns a job.
func (r *readTx) Job(id string) (store.ExportJob, bool, error) {
	return getRecord[store.ExportJob](r, "SELECT record FROM export_jobs WHERE id = $1", id)
}

// JobsOf iterates a configuration's jobs newest first: ids are UUIDv7, so id order is creation
// order.
func (r *readTx) JobsOf(configID string, fn func(store.ExportJob) bool) error {
	return eachRecord(r,
		"SELECT record, id FROM export_jobs WHERE config_id = $2 ORDER BY id DESC LIMIT $1",
		"SELECT record, id FROM export_jobs WHERE config_id = $2 AND id < $3 ORDER BY id DESC LIMIT $1",
		[]any{configID}, 1, fn)
}

// UnfinishedJobs iterates the jobs not SUCCEEDED, oldest first.
func (r *readTx) UnfinishedJobs(fn func(store.ExportJob) bool) error {
	return eachRecord(r,
		"SELECT record, id FROM export_jobs WHERE unfinished ORDER BY id LIMIT $1",
		"SELECT record, id FROM export_jobs WHERE unfinished AND id > $2 ORDER BY id LIMIT $1", nil, 1, fn)
}

// PutJob stores a job and its index columns.
func (w *writeTx) PutJob(j store.ExportJob) error {
	record, err := json.Marshal(j)
	if err != nil {
		return err
	}
	_, err = w.tx.Exec(w.ctx, `INSERT INTO export_jobs (id, config_id, unfinished, record) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET config_id = EXCLUDED.config_id, unfinished = EXCLUDED.unfinished, record = EXCLUDED.record`,
		j.ID, j.ConfigID, !j.Finished(), string(record))
	return err
}

// DeleteJob removes a job and, by cascade, its tasks.
func (w *writeTx) DeleteJob(id string) error {
	_, err := w.tx.Exec(w.ctx, "DELETE FROM export_jobs WHERE id = $1", id)
	return err
}

// Task returns task index of a job.
func (r *readTx) Task(jobID string, index int) (store.ExportTask, bool, error) {
	return getRecord[store.ExportTask](r, "SELECT record FROM export_tasks WHERE job_id = $1 AND task_index = $2", jobID, index)
}

// Tasks iterates a job's tasks by index.
func (r *readTx) Tasks(jobID string, fn func(store.ExportTask) bool) error {
	return eachRecord(r,
		"SELECT record, task_index FROM export_tasks WHERE job_id = $2 ORDER BY task_index LIMIT $1",
		"SELECT record, task_index FROM export_tasks WHERE job_id = $2 AND task_index > $3 ORDER BY task_index LIMIT $1",
		[]any{jobID}, 1, fn)
}

// PutTask stores a task of an existing job, replacing the one with its index.
func (w *writeTx) PutTask(t store.ExportTask) error {
	record, err := json.Marshal(t)
	if err != nil {
		return err
	}
	tag, err := w.tx.Exec(w.ctx, `INSERT INTO export_tasks (job_id, task_index, record)
		SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM export_jobs WHERE id = $1)
		ON CONFLICT (job_id, task_index) DO UPDATE SET record = EXCLUDED.record`, t.JobID, t.Index, string(record))
	if err == nil && tag.RowsAffected() == 0 {
		return &store.NotFoundError{What: "export job", ID: t.JobID}
	}
	return err
}
