package store

import (
	"fmt"
	"slices"
	"time"
)

// Interval is how often a configuration exports. The names are Immuta's.
type Interval string

const (
	Every5Minutes Interval = "EVERY_5_MINUTES"
	EveryHour     Interval = "EVERY_HOUR"
	Every2Hours   Interval = "EVERY_2_HOURS"
	Every4Hours   Interval = "EVERY_4_HOURS"
	Every6Hours   Interval = "EVERY_6_HOURS"
	Every12Hours  Interval = "EVERY_12_HOURS"
	Every24Hours  Interval = "EVERY_24_HOURS"
)

var intervalDurations = map[Interval]time.Duration{
	Every5Minutes: 5 * time.Minute,
	EveryHour:     time.Hour,
	Every2Hours:   2 * time.Hour,
	Every4Hours:   4 * time.Hour,
	Every6Hours:   6 * time.Hour,
	Every12Hours:  12 * time.Hour,
	Every24Hours:  24 * time.Hour,
}

// Duration is the length of the interval, or 0 for an unknown one.
func (i Interval) Duration() time.Duration { return intervalDurations[i] }

// Kind says how the service authenticates to a destination.
type Kind string

const (
	KindS3AccessKey   Kind = "S3_ACCESS_KEY"
	KindS3AssumedRole Kind = "S3_ASSUMED_ROLE"
	// KindADLSSASToken writes to Azure Data Lake Storage Gen2 (a blob container) with a SAS token.
	KindADLSSASToken Kind = "ADLS_SAS_TOKEN"
)

// HasSecret reports whether configurations of the kind carry a sealed secret: the secret access
// key of an access key, the SAS token of ADLS. Assumed roles have none.
func (k Kind) HasSecret() bool { return k == KindS3AccessKey || k == KindADLSSASToken }

// SecretField is the API's name of the kind's secret, for error messages.
func (k Kind) SecretField() string {
	if k == KindADLSSASToken {
		return "sasToken"
	}
	return "secretAccessKey"
}

// Server-side encryption S3 applies to the objects written (the x-amz-server-side-encryption values).
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
)

// Connection statuses besides the error text of a failed check.
const (
	// ConnectionPending: the destination has not been checked since it last changed.
	ConnectionPending = "PENDING"
	// ConnectionSuccess: the last check wrote its verification object.
	ConnectionSuccess = "SUCCESS"
)

// ExportConfiguration is one customer destination. It never holds the secret access key:
// that is sealed apart and read only by the code that talks to S3.
type ExportConfiguration struct {
	ID string `json:"id"`
	// Name is optional and unique: declarative setup (auditexport exportConfig apply) finds
	// configurations by it.
	Name     string   `json:"name,omitempty"`
	Kind     Kind     `json:"kind"`
	Interval Interval `json:"interval"`
	Enabled  bool     `json:"enabled"`

	Bucket   string `json:"bucket,omitempty"` // S3 only
	Path     string `json:"path,omitempty"`
	Region   string `json:"region,omitempty"` // S3 only
	Endpoint string `json:"endpoint,omitempty"`

	// StorageAccount and FileSystem (the blob container) locate an ADLS destination.
	StorageAccount string `json:"storageAccount,omitempty"`
	FileSystem     string `json:"fileSystem,omitempty"`

	AccessKeyID string `json:"accessKeyId,omitempty"` // KindS3AccessKey only
	RoleARN     string `json:"roleArn,omitempty"`     // KindS3AssumedRole only

	// ServerSideEncryption asks S3 to encrypt every object written: SSEAES256 or SSEKMS; empty
	// leaves it to the bucket's default. Customers whose bucket policy demands SSE-KMS need it.
	ServerSideEncryption string `json:"serverSideEncryption,omitempty"`
	// SSEKMSKeyID names the KMS key for SSEKMS (key id, alias or ARN); empty: the account's
	// default aws/s3 key.
	SSEKMSKeyID string `json:"sseKmsKeyId,omitempty"`

	ConnectionStatus    string    `json:"connectionStatus"`
	ConnectionCheckedAt time.Time `json:"connectionCheckedAt,omitzero"`
	// CheckFailures counts consecutive failed checks; the background re-check backs off on it.
	CheckFailures int `json:"checkFailures,omitempty"`
	// NextCheckAt is when the background check is due again (zero: now). Claiming a check moves
	// it forward, so replicas sharing a store check each destination once.
	NextCheckAt time.Time `json:"nextCheckAt,omitzero"`
	// Cursor is the seq of the last event exported to this destination; only later events are
	// exported. It starts at the buffer's head when the configuration is created.
	Cursor uint64 `json:"cursor"`
	// ScheduledThrough is the latest interval boundary the scheduler has served.
	ScheduledThrough time.Time `json:"scheduledThrough,omitzero"`
	// ScheduleDueAt is the next interval boundary after ScheduledThrough: when the scheduler
	// serves this configuration next. Derived (see reindex); engines index it.
	ScheduleDueAt time.Time `json:"scheduleDueAt,omitzero"`
	// StartTime, when set at creation, makes the configuration export the buffered events
	// received since then, instead of only those received after its creation.
	StartTime time.Time `json:"startTime,omitzero"`
	// LastDigest is the newest export digest written for this destination: the next one links to it.
	LastDigest DigestRef `json:"lastDigest,omitzero"`
	// SkippedEvents counts events this destination never received because they left the buffer
	// before it exported them: while it was disabled, or past the buffer's age limit.
	SkippedEvents int64 `json:"skippedEvents,omitempty"`
	// Revision counts changes to the destination or its secret. A check result is recorded only
	// for the revision it checked, so a slow check cannot overwrite the status of a newer one.
	Revision int64 `json:"revision"`

	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedBy string    `json:"updatedBy"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// destination is what a connectivity check depends on; when it changes, an earlier result is void.
type destination struct {
	kind                                            Kind
	bucket, path, region, endpoint, accessKey, role string
	sse, kmsKey                                     string
	account, fileSystem                             string
}

// Reindex derives the fields engines index from the others (ScheduleDueAt); Store calls it
// before every write, an engine's migration after filling new fields.
func (c *ExportConfiguration) Reindex() {
	if d := c.Interval.Duration(); d > 0 {
		c.ScheduleDueAt = c.ScheduledThrough.Truncate(d).Add(d)
	}
}

func (c *ExportConfiguration) destination() destination {
	return destination{c.Kind, c.Bucket, c.Path, c.Region, c.Endpoint, c.AccessKeyID, c.RoleARN, c.ServerSideEncryption, c.SSEKMSKeyID,
		c.StorageAccount, c.FileSystem}
}

// Permission is a right carried by an API token.
type Permission string

const (
	// PermissionAdmin implies every other permission and alone may create tokens.
	PermissionAdmin Permission = "ADMIN"
	// PermissionAudit manages export configurations and reads audit data.
	PermissionAudit Permission = "AUDIT"
	// PermissionIngest sends audit events.
	PermissionIngest Permission = "INGEST"
	// PermissionMetrics reads /metrics.
	PermissionMetrics Permission = "METRICS"
)

// AllPermissions lists every permission in a stable order.
var AllPermissions = []Permission{PermissionAdmin, PermissionAudit, PermissionIngest, PermissionMetrics}

func (p Permission) valid() bool { return slices.Contains(AllPermissions, p) }

// Principal is the authenticated caller of a request.
type Principal struct {
	TokenID     string
	Name        string
	Permissions []Permission
}

// Can reports whether the principal holds p, directly or through ADMIN.
func (p Principal) Can(perm Permission) bool {
	return slices.Contains(p.Permissions, PermissionAdmin) || slices.Contains(p.Permissions, perm)
}

// Token is the stored record of an API token: its hash, never the token itself.
type Token struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Permissions []Permission `json:"permissions"`
	SHA256      []byte       `json:"sha256"`
	CreatedBy   string       `json:"createdBy"`
	CreatedAt   time.Time    `json:"createdAt"`
}

func (t Token) principal() Principal {
	return Principal{TokenID: t.ID, Name: t.Name, Permissions: t.Permissions}
}

func (t Token) String() string { return fmt.Sprintf("token %s (%s)", t.Name, t.ID) }
