package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/auditexport/auditexport/event"
)

// The control plane audits itself: every change to an export configuration and every token
// created or revoked becomes an event in the buffer, written in the same transaction as the change, so the
// trail and the state never disagree. Secrets never enter these events.

// Audit actions, in the event's action field.
const (
	auditCreate  = "CREATE"
	auditUpdate  = "UPDATE"
	auditEnable  = "ENABLE"
	auditDisable = "DISABLE"
	auditDelete  = "DELETE"
)

// auditPayloadTypes name each action's auditPayload.type for configurations.
var auditPayloadTypes = map[string]string{
	auditCreate:  "ExportConfigurationCreatedAuditPayload",
	auditUpdate:  "ExportConfigurationUpdatedAuditPayload",
	auditEnable:  "ExportConfigurationEnabledAuditPayload",
	auditDisable: "ExportConfigurationDisabledAuditPayload",
	auditDelete:  "ExportConfigurationDeletedAuditPayload",
}

const (
	targetExportConfiguration = "EXPORT_CONFIGURATION"
	targetAPIToken            = "API_TOKEN"
)

// configurationAudit is the event recording action on c; changed lists the fields an update
// changed (secretAccessKey by name only).
func configurationAudit(by Principal, at time.Time, action string, c ExportConfiguration, changed []string) ([]byte, error) {
	summary := map[string]any{
		"id": c.ID, "name": c.Name, "kind": c.Kind, "interval": c.Interval, "enabled": c.Enabled,
		"path": c.Path, "endpoint": c.Endpoint,
	}
	switch c.Kind {
	case KindADLSSASToken:
		summary["storageAccount"], summary["fileSystem"] = c.StorageAccount, c.FileSystem
	case KindS3AccessKey:
		summary["accessKeyId"] = c.AccessKeyID
	case KindS3AssumedRole:
		summary["roleArn"] = c.RoleARN
	}
	if c.Kind != KindADLSSASToken {
		summary["bucket"], summary["region"] = c.Bucket, c.Region
		summary["serverSideEncryption"], summary["sseKmsKeyId"] = c.ServerSideEncryption, c.SSEKMSKeyID
	}
	payload := map[string]any{"type": auditPayloadTypes[action], "version": 1, "exportConfiguration": summary}
	if changed != nil {
		payload["changedFields"] = changed
	}
	return auditRecord(by, at, action, targetExportConfiguration, c.ID, payload)
}

func tokenAudit(by Principal, at time.Time, action string, t Token) ([]byte, error) {
	payloadType := "ApiTokenCreatedAuditPayload"
	if action == auditDelete {
		payloadType = "ApiTokenRevokedAuditPayload"
	}
	payload := map[string]any{"type": payloadType, "version": 1,
		"apiToken": map[string]any{"id": t.ID, "name": t.Name, "permissions": t.Permissions}}
	return auditRecord(by, at, action, targetAPIToken, t.ID, payload)
}

func auditRecord(by Principal, at time.Time, action, targetType, targetID string, payload map[string]any) ([]byte, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	payloadJSON, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode audit payload: %w", err)
	}
	targets, _ := json.Marshal([]map[string]string{{"id": targetID, "type": targetType}})
	return event.Encode(event.Event{
		ID: id, Action: action, ActionStatus: "SUCCESS", EventTimestamp: at, ReceivedTimestamp: at,
		Actor:      event.Actor{ID: by.TokenID, Name: by.Name, Type: targetAPIToken},
		TargetType: targetType, Targets: targets, AuditPayload: payloadJSON,
	}), nil
}

// changedFields names what differs between two versions of a configuration.
func changedFields(old, c ExportConfiguration, secretChanged bool) []string {
	var out []string
	add := func(name string, differs bool) {
		if differs {
			out = append(out, name)
		}
	}
	add("name", old.Name != c.Name)
	add("interval", old.Interval != c.Interval)
	add("enabled", old.Enabled != c.Enabled)
	add("bucket", old.Bucket != c.Bucket)
	add("path", old.Path != c.Path)
	add("region", old.Region != c.Region)
	add("endpoint", old.Endpoint != c.Endpoint)
	add("accessKeyId", old.AccessKeyID != c.AccessKeyID)
	add("roleArn", old.RoleARN != c.RoleARN)
	add("serverSideEncryption", old.ServerSideEncryption != c.ServerSideEncryption)
	add("sseKmsKeyId", old.SSEKMSKeyID != c.SSEKMSKeyID)
	add("storageAccount", old.StorageAccount != c.StorageAccount)
	add("fileSystem", old.FileSystem != c.FileSystem)
	add(c.Kind.SecretField(), secretChanged)
	return out
}

// auditTo returns a function that appends a self-audit record (as the audit builders return
// it) within tx. These bypass the buffer's limits, which are for ingested events, so a full
// buffer never blocks a configuration change.
func (s *Store) auditTo(tx Tx) func(record []byte, err error) error {
	return func(record []byte, err error) error {
		if err != nil {
			return err
		}
		id, err := event.IDOf(record)
		if err != nil {
			return err
		}
		_, _, err = tx.AppendEvent(id, record, s.txNow(tx))
		return err
	}
}
