package graph

import (
	"context"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/graph/model"
	"github.com/auditexport/auditexport/store"
)

// toModel converts a configuration; pending is its pendingEvents and now the time, for
// nextExportAt.
func toModel(c store.ExportConfiguration, pending int64, now time.Time) *model.ExportConfiguration {
	m := &model.ExportConfiguration{
		PendingEvents:    int(pending),
		SkippedEvents:    int(c.SkippedEvents),
		Name:             optional(c.Name),
		ID:               c.ID,
		Interval:         model.ExportInterval(c.Interval),
		Enabled:          c.Enabled,
		ConnectionStatus: c.ConnectionStatus,
		CreatedBy:        optional(c.CreatedBy),
		CreatedAt:        c.CreatedAt,
		UpdatedBy:        optional(c.UpdatedBy),
		UpdatedAt:        c.UpdatedAt,
		Cursor:           c.Cursor,
	}
	m.ConnectionCheckedAt = optionalTime(c.ConnectionCheckedAt)
	if c.Enabled {
		m.NextExportAt = optionalTime(exporter.NextExportAt(c, now))
	}
	switch c.Kind {
	case store.KindS3AccessKey:
		m.EndpointConfiguration = &model.S3AccessKeyEndpointConfiguration{
			Bucket: c.Bucket, Path: optional(c.Path), Region: c.Region,
			AccessKeyID: c.AccessKeyID, Endpoint: optional(c.Endpoint),
			ServerSideEncryption: sseToModel(c.ServerSideEncryption), SseKmsKeyID: optional(c.SSEKMSKeyID),
		}
	case store.KindS3AssumedRole:
		m.EndpointConfiguration = &model.S3AssumedRoleEndpointConfiguration{
			Bucket: c.Bucket, Path: optional(c.Path), Region: c.Region,
			RoleArn: c.RoleARN, ExternalID: c.ID, Endpoint: optional(c.Endpoint),
			ServerSideEncryption: sseToModel(c.ServerSideEncryption), SseKmsKeyID: optional(c.SSEKMSKeyID),
		}
	case store.KindADLSSASToken:
		m.EndpointConfiguration = &model.AdlsSasTokenEndpointConfiguration{
			StorageAccount: c.StorageAccount, FileSystem: c.FileSystem, Path: optional(c.Path), Endpoint: optional(c.Endpoint),
		}
	}
	return m
}

// toModels converts a list of configurations, reading the buffer's bounds once for all of their
// pendingEvents.
func toModels(ctx context.Context, cs []store.ExportConfiguration, buffer store.EventBuffer, now time.Time) ([]*model.ExportConfiguration, error) {
	status, err := buffer.BufferStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*model.ExportConfiguration, len(cs))
	for i, c := range cs {
		out[i] = toModel(c, status.Pending(c.Cursor), now)
	}
	return out, nil
}

// convertAll converts every element of in with convert.
func convertAll[T, U any](in []T, convert func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = convert(v)
	}
	return out
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toJob(j store.ExportJob) *model.ExportJob {
	m := &model.ExportJob{
		ID: j.ID, ExportConfigurationID: j.ConfigID, Status: model.ExportStatus(j.Status),
		StartTimestamp: optionalTime(j.StartedAt), EndTimestamp: optionalTime(j.EndedAt),
		EventCount: int(j.EventCount), ObjectCount: int(j.ObjectCount), Bytes: int(j.Bytes), Attempts: j.Attempts,
		FailureReason: optional(j.FailureReason), NextAttemptTimestamp: optionalTime(j.NextAttemptAt),
		SkippedEvents: int(j.SkippedEvents),
	}
	return m
}

func toTask(t store.ExportTask) *model.ExportJobTask {
	return &model.ExportJobTask{
		ID: t.ID, Key: t.Key, StartTimestamp: optionalTime(t.StartedAt), EndTimestamp: optionalTime(t.EndedAt),
		Attempts: t.Attempts, Offset: int(t.Offset), Limit: int(t.Limit), Bytes: int(t.Bytes),
		Status: model.ExportStatus(t.Status), FailureReason: optional(t.FailureReason), Sha256: optional(t.SHA256),
	}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func newAccessKeyConfiguration(d model.S3AccessKeyExportConfigurationInput) store.ExportConfiguration {
	return store.ExportConfiguration{
		Kind: store.KindS3AccessKey, Name: deref(d.Name), Interval: store.Interval(d.Interval), Enabled: true,
		Bucket: d.Bucket, Path: deref(d.Path), Region: d.Region, Endpoint: deref(d.Endpoint),
		AccessKeyID: d.AccessKeyID, StartTime: deref(d.StartTime),
		ServerSideEncryption: sseToStore(d.ServerSideEncryption), SSEKMSKeyID: deref(d.SseKmsKeyID),
	}
}

func newAssumedRoleConfiguration(d model.S3AssumedRoleExportConfigurationInput) store.ExportConfiguration {
	return store.ExportConfiguration{
		Kind: store.KindS3AssumedRole, Name: deref(d.Name), Interval: store.Interval(d.Interval), Enabled: true,
		Bucket: d.Bucket, Path: deref(d.Path), Region: d.Region, Endpoint: deref(d.Endpoint),
		RoleARN: d.RoleArn, StartTime: deref(d.StartTime),
		ServerSideEncryption: sseToStore(d.ServerSideEncryption), SSEKMSKeyID: deref(d.SseKmsKeyID),
	}
}

func newADLSConfiguration(d model.AdlsSasTokenExportConfigurationInput) store.ExportConfiguration {
	return store.ExportConfiguration{
		Kind: store.KindADLSSASToken, Name: deref(d.Name), Interval: store.Interval(d.Interval), Enabled: true,
		StorageAccount: d.StorageAccount, FileSystem: d.FileSystem, Path: deref(d.Path), Endpoint: deref(d.Endpoint),
		StartTime: deref(d.StartTime),
	}
}

// accessKeyUpdate, assumedRoleUpdate and adlsUpdate turn an update input into a store.Change: given fields
// replace stored ones, omitted fields keep theirs, a path or endpoint given as null or "" is cleared.
func accessKeyUpdate(d model.UpdateS3AccessKeyExportConfigurationInput) store.Change {
	return func(c *store.ExportConfiguration) error {
		if err := requireKind(c, store.KindS3AccessKey); err != nil {
			return err
		}
		applyDestination(c, d.Name, d.Interval, d.Bucket, d.Region, d.Path, d.Endpoint)
		applyEncryption(c, d.ServerSideEncryption, d.SseKmsKeyID)
		setIfGiven(&c.AccessKeyID, d.AccessKeyID)
		return nil
	}
}

func assumedRoleUpdate(d model.UpdateS3AssumedRoleExportConfigurationInput) store.Change {
	return func(c *store.ExportConfiguration) error {
		if err := requireKind(c, store.KindS3AssumedRole); err != nil {
			return err
		}
		applyDestination(c, d.Name, d.Interval, d.Bucket, d.Region, d.Path, d.Endpoint)
		applyEncryption(c, d.ServerSideEncryption, d.SseKmsKeyID)
		setIfGiven(&c.RoleARN, d.RoleArn)
		return nil
	}
}

func adlsUpdate(d model.UpdateAdlsSasTokenExportConfigurationInput) store.Change {
	return func(c *store.ExportConfiguration) error {
		if err := requireKind(c, store.KindADLSSASToken); err != nil {
			return err
		}
		var interval *model.ExportInterval
		if d.Interval != nil {
			interval = (*model.ExportInterval)(d.Interval)
		}
		applyDestination(c, d.Name, interval, nil, nil, d.Path, d.Endpoint)
		setIfGiven(&c.StorageAccount, d.StorageAccount)
		setIfGiven(&c.FileSystem, d.FileSystem)
		return nil
	}
}

// updateMutations name the mutation that updates each kind.
var updateMutations = map[store.Kind]string{
	store.KindS3AccessKey:   "updateS3AccessKeyExportConfiguration",
	store.KindS3AssumedRole: "updateS3AssumedRoleExportConfiguration",
	store.KindADLSSASToken:  "updateAdlsSasTokenExportConfiguration",
}

func requireKind(c *store.ExportConfiguration, kind store.Kind) error {
	if c.Kind == kind {
		return nil
	}
	return &store.ValidationError{Fields: []store.FieldError{{
		Field:   "id",
		Message: fmt.Sprintf("export configuration %s is of another kind; use %s", c.ID, updateMutations[c.Kind]),
	}}}
}

func applyDestination(c *store.ExportConfiguration, name graphql.Omittable[*string], interval *model.ExportInterval, bucket, region *string, path, endpoint graphql.Omittable[*string]) {
	if v, ok := name.ValueOK(); ok {
		c.Name = deref(v)
	}
	if interval != nil {
		c.Interval = store.Interval(*interval)
	}
	setIfGiven(&c.Bucket, bucket)
	setIfGiven(&c.Region, region)
	if v, ok := path.ValueOK(); ok {
		c.Path = deref(v)
	}
	if v, ok := endpoint.ValueOK(); ok {
		c.Endpoint = deref(v)
	}
}

// applyEncryption updates server-side encryption; leaving aws:kms also drops its key unless the
// update names one (which validation then refuses).
func applyEncryption(c *store.ExportConfiguration, sse graphql.Omittable[*model.S3ServerSideEncryption], kmsKey graphql.Omittable[*string]) {
	if v, ok := sse.ValueOK(); ok {
		c.ServerSideEncryption = sseToStore(v)
		if _, keyGiven := kmsKey.ValueOK(); !keyGiven && c.ServerSideEncryption != store.SSEKMS {
			c.SSEKMSKeyID = ""
		}
	}
	if v, ok := kmsKey.ValueOK(); ok {
		c.SSEKMSKeyID = deref(v)
	}
}

// sseToStore and sseToModel map the GraphQL enum to the x-amz-server-side-encryption values.
func sseToStore(m *model.S3ServerSideEncryption) string {
	switch deref(m) {
	case model.S3ServerSideEncryptionAes256:
		return store.SSEAES256
	case model.S3ServerSideEncryptionAWSKms:
		return store.SSEKMS
	}
	return ""
}

func sseToModel(s string) *model.S3ServerSideEncryption {
	var m model.S3ServerSideEncryption
	switch s {
	case store.SSEAES256:
		m = model.S3ServerSideEncryptionAes256
	case store.SSEKMS:
		m = model.S3ServerSideEncryptionAWSKms
	default:
		return nil
	}
	return &m
}

func setIfGiven(field *string, value *string) {
	if value != nil {
		*field = *value
	}
}

func toPermissions(ps []model.Permission) []store.Permission {
	return convertAll(ps, func(p model.Permission) store.Permission { return store.Permission(p) })
}

func fromPermissions(ps []store.Permission) []model.Permission {
	return convertAll(ps, func(p store.Permission) model.Permission { return model.Permission(p) })
}

func toAPIToken(t store.Token) *model.APIToken {
	return &model.APIToken{Name: t.Name, Permissions: fromPermissions(t.Permissions), CreatedBy: optional(t.CreatedBy), CreatedAt: t.CreatedAt}
}
