package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/auditexport/auditexport/store"
)

func testCreateAndRead(t *testing.T, h *harness) {
	st := h.new(t)
	created, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), testSecret, alice)
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == "" || created.ConnectionStatus != store.ConnectionPending || created.CreatedAt.IsZero() ||
		created.UpdatedBy != "alice" || !created.ConnectionCheckedAt.IsZero() {
		t.Fatalf("created = %+v", created)
	}
	got, err := st.Configuration(t.Context(), created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != created {
		t.Fatalf("read back %+v, want %+v", got, created)
	}
	secret, err := st.Secret(t.Context(), created.ID)
	if err != nil || secret != testSecret {
		t.Fatalf("SecretAccessKey = %q, %v", secret, err)
	}
	second, err := st.CreateConfiguration(t.Context(), assumedRoleConfig(), "", alice)
	if err != nil {
		t.Fatal(err)
	}
	all, err := st.Configurations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != created.ID || all[1].ID != second.ID {
		t.Fatalf("Configurations() = %+v, want both, oldest first", all)
	}
	if _, err := st.Secret(t.Context(), second.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("assumed-role configuration has a secret: %v", err)
	}
}

func testInvalidCreateStoresNothing(t *testing.T, h *harness) {
	st := h.new(t)
	bad := accessKeyConfig()
	bad.Bucket = "Not_A_Bucket"
	if _, err := st.CreateConfiguration(t.Context(), bad, testSecret, alice); !IsValidation(err, "bucket") {
		t.Fatalf("create with bad bucket: %v", err)
	}
	if _, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), "short", alice); !IsValidation(err, "secretAccessKey") {
		t.Fatalf("create with short secret: %v", err)
	}
	if all, _ := st.Configurations(t.Context()); len(all) != 0 {
		t.Fatalf("invalid creates stored %d configurations", len(all))
	}
}

func testUpdate(t *testing.T, h *harness) {
	st := h.new(t)
	c, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), testSecret, alice)
	if err != nil {
		t.Fatal(err)
	}
	noChange := func(*store.ExportConfiguration) error { return nil }

	t.Run("no change keeps updatedAt", func(t *testing.T) {
		same := testSecret
		got, err := st.UpdateConfiguration(t.Context(), c.ID, bob, noChange, &same)
		if err != nil || got != c {
			t.Fatalf("no-op update = %+v, %v; want %+v", got, err, c)
		}
	})
	t.Run("interval keeps status and secret", func(t *testing.T) {
		got, err := st.UpdateConfiguration(t.Context(), c.ID, bob, func(c *store.ExportConfiguration) error {
			c.Interval = store.Every24Hours
			return nil
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Interval != store.Every24Hours || got.UpdatedBy != "bob" || got.CreatedBy != "alice" || got.UpdatedAt.Before(c.UpdatedAt) {
			t.Fatalf("updated = %+v", got)
		}
		if s, _ := st.Secret(t.Context(), c.ID); s != testSecret {
			t.Fatal("secret changed by an update that omitted it")
		}
	})
	t.Run("new secret is stored", func(t *testing.T) {
		newSecret := "another-secret-key-value"
		if _, err := st.UpdateConfiguration(t.Context(), c.ID, bob, noChange, &newSecret); err != nil {
			t.Fatal(err)
		}
		if s, _ := st.Secret(t.Context(), c.ID); s != newSecret {
			t.Fatalf("secret = %q, want the new one", s)
		}
	})
	t.Run("invalid update leaves data as it was", func(t *testing.T) {
		before, _ := st.Configuration(t.Context(), c.ID)
		secretBefore, _ := st.Secret(t.Context(), c.ID)
		tooShort := "x"
		_, err := st.UpdateConfiguration(t.Context(), c.ID, bob, func(c *store.ExportConfiguration) error {
			c.Bucket = "ok-bucket"
			c.Path = "../escape"
			return nil
		}, &tooShort)
		if !IsValidation(err, "path") || !IsValidation(err, "secretAccessKey") {
			t.Fatalf("err = %v, want path and secretAccessKey errors", err)
		}
		after, _ := st.Configuration(t.Context(), c.ID)
		secretAfter, _ := st.Secret(t.Context(), c.ID)
		if after != before || secretAfter != secretBefore {
			t.Fatalf("failed update changed the record: %+v -> %+v", before, after)
		}
	})
	t.Run("id, kind and creation are immutable", func(t *testing.T) {
		got, err := st.UpdateConfiguration(t.Context(), c.ID, bob, func(x *store.ExportConfiguration) error {
			x.ID, x.Kind, x.CreatedBy = "other", store.KindS3AssumedRole, "eve"
			return nil
		}, nil)
		if err != nil || got.ID != c.ID || got.Kind != store.KindS3AccessKey || got.CreatedBy != "alice" {
			t.Fatalf("update = %+v, %v", got, err)
		}
	})
	t.Run("unknown id", func(t *testing.T) {
		for _, id := range []string{"01a1ffdb-3f23-7df1-80b5-645a8cda7506", "not-a-uuid", strings.Repeat("x", 500)} {
			_, err := st.UpdateConfiguration(t.Context(), id, bob, noChange, nil)
			if !errors.Is(err, store.ErrNotFound) || len(err.Error()) > 120 {
				t.Fatalf("update %q: %v", id, err)
			}
		}
	})
	t.Run("secret on an assumed role is refused", func(t *testing.T) {
		role, err := st.CreateConfiguration(t.Context(), assumedRoleConfig(), "", alice)
		if err != nil {
			t.Fatal(err)
		}
		s := testSecret
		if _, err := st.UpdateConfiguration(t.Context(), role.ID, bob, noChange, &s); !IsValidation(err, "secretAccessKey") {
			t.Fatalf("err = %v", err)
		}
	})
}

func testDestinationChangeVoidsConnectionStatus(t *testing.T, h *harness) {
	st := h.new(t)
	c, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), testSecret, alice)
	if err != nil {
		t.Fatal(err)
	}
	checked := time.Now().UTC()
	c, err = st.RecordConnectionCheck(t.Context(), c.ID, c.Revision, store.ConnectionSuccess, checked, time.Time{})
	if err != nil || c.ConnectionStatus != store.ConnectionSuccess || !c.ConnectionCheckedAt.Equal(checked) || c.UpdatedBy != "alice" {
		t.Fatalf("record check: %+v %v", c, err)
	}
	c, _ = st.SetEnabled(t.Context(), c.ID, bob, false)
	if c.ConnectionStatus != store.ConnectionSuccess {
		t.Fatalf("disabling voided the status: %+v", c)
	}
	oldRevision := c.Revision
	c, err = st.UpdateConfiguration(t.Context(), c.ID, bob, func(x *store.ExportConfiguration) error {
		x.Bucket = "another-bucket"
		return nil
	}, nil)
	if err != nil || c.ConnectionStatus != store.ConnectionPending || !c.ConnectionCheckedAt.IsZero() || c.Revision != oldRevision+1 {
		t.Fatalf("after bucket change: %+v %v", c, err)
	}
	// A check that started before the change must not overwrite the new PENDING.
	stale, err := st.RecordConnectionCheck(t.Context(), c.ID, oldRevision, store.ConnectionSuccess, time.Now(), time.Time{})
	if err != nil || stale.ConnectionStatus != store.ConnectionPending {
		t.Fatalf("stale check result was recorded: %+v %v", stale, err)
	}
	secret := "a-new-secret-value"
	c, _ = st.UpdateConfiguration(t.Context(), c.ID, bob, func(*store.ExportConfiguration) error { return nil }, &secret)
	if c.Revision != oldRevision+2 {
		t.Fatalf("a new secret did not start a new revision: %+v", c)
	}
}

func testCheckFailuresCount(t *testing.T, h *harness) {
	st := h.new(t)
	c, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), testSecret, alice)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		c, _ = st.RecordConnectionCheck(t.Context(), c.ID, c.Revision, "Error testing access", time.Now(), time.Time{})
		if c.CheckFailures != i {
			t.Fatalf("after %d failures: %d", i, c.CheckFailures)
		}
	}
	c, _ = st.RecordConnectionCheck(t.Context(), c.ID, c.Revision, store.ConnectionSuccess, time.Now(), time.Time{})
	if c.CheckFailures != 0 {
		t.Fatalf("success did not reset failures: %d", c.CheckFailures)
	}
	if _, err := st.RecordConnectionCheck(t.Context(), "01a1ffdb-3f23-7df1-80b5-645a8cda7506", 0, "x", time.Now(), time.Time{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record for unknown id: %v", err)
	}
}

func testEnableDisableDelete(t *testing.T, h *harness) {
	st := h.new(t)
	c, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), testSecret, alice)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.SetEnabled(t.Context(), c.ID, bob, false); err != nil || got.Enabled {
		t.Fatalf("disable: %+v %v", got, err)
	}
	if got, err := st.SetEnabled(t.Context(), c.ID, bob, true); err != nil || !got.Enabled {
		t.Fatalf("enable: %+v %v", got, err)
	}
	deleted, err := st.DeleteConfiguration(t.Context(), c.ID, bob)
	if err != nil || deleted.ID != c.ID {
		t.Fatalf("delete: %+v %v", deleted, err)
	}
	if _, err := st.Configuration(t.Context(), c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read after delete: %v", err)
	}
	if _, err := st.Secret(t.Context(), c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("secret survived delete: %v", err)
	}
	if _, err := st.DeleteConfiguration(t.Context(), c.ID, bob); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func testConfigurationNames(t *testing.T, h *harness) {
	st := h.new(t)
	named := accessKeyConfig()
	named.Name = "acme-prod"
	a, err := st.CreateConfiguration(t.Context(), named, testSecret, alice)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.Configuration(t.Context(), a.ID); err != nil || got.Name != "acme-prod" {
		t.Fatalf("stored name: %+v %v", got, err)
	}
	if _, err := st.CreateConfiguration(t.Context(), named, testSecret, alice); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second configuration with the name: %v", err)
	}
	for _, bad := range []string{"Acme", "-x", "x-", "a b", strings.Repeat("a", 65), "01a1ffdb-3f23-7df1-80b5-645a8cda7506"} {
		c := accessKeyConfig()
		c.Name = bad
		if _, err := st.CreateConfiguration(t.Context(), c, testSecret, alice); !IsValidation(err, "name") {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	b, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), testSecret, alice) // unnamed: fine, several times
	if err != nil {
		t.Fatal(err)
	}
	rename := func(id, name string) error {
		_, err := st.UpdateConfiguration(t.Context(), id, bob, func(c *store.ExportConfiguration) error { c.Name = name; return nil }, nil)
		return err
	}
	if err := rename(b.ID, "acme-prod"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("rename onto a taken name: %v", err)
	}
	if err := rename(a.ID, "acme-old"); err != nil {
		t.Fatal(err)
	}
	if err := rename(b.ID, "acme-prod"); err != nil {
		t.Fatalf("the freed name: %v", err)
	}
}

func testDeletingAConfigurationDeletesItsJobsAndTasks(t *testing.T, h *harness) {
	st := h.new(t)
	c, err := st.CreateConfiguration(t.Context(), accessKeyConfig(), testSecret, alice)
	if err != nil {
		t.Fatal(err)
	}
	job, err := st.CreateJob(t.Context(), c.ID, store.ExportPlan{MaxFileEventBytes: 1 << 20, MaxOpenFiles: 1}, true, time.Time{})
	if err != nil || job.Status != store.JobPending { // the creation's own audit event is pending
		t.Fatalf("job %+v %v", job, err)
	}
	if job, err = st.StartAttempt(t.Context(), job.ID, "test", time.Minute); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := st.PutTask(t.Context(), job.Attempt(), store.ExportTask{ID: fmt.Sprint(i), JobID: job.ID, Index: i, Key: fmt.Sprint("k", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if tasks, err := st.Tasks(t.Context(), job.ID); err != nil || len(tasks) != 3 || tasks[2].Key != "k2" {
		t.Fatalf("tasks %+v %v", tasks, err)
	}
	if _, err := st.DeleteConfiguration(t.Context(), c.ID, bob); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Job(t.Context(), job.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("job after delete: %v", err)
	}
	for i := range 3 {
		if _, found, _ := st.Task(t.Context(), job.ID, i); found {
			t.Fatalf("task %d outlived its job", i)
		}
	}
}

func testWrongMasterKeyIsRefusedAtOpen(t *testing.T, h *harness) {
	data := h.engine.NewData(t)
	h.open(t, data, options{}).Close()
	if _, err := h.tryOpen(t, data, options{key: Key()}); !errors.Is(err, store.ErrWrongMasterKey) {
		t.Fatalf("open with another key: %v", err)
	}
	if _, err := h.tryOpen(t, data, options{key: []byte("short")}); err == nil {
		t.Fatal("a 5-byte master key was accepted")
	}
}
