package store

// Every bucket the store uses is declared here, so the on-disk layout can be read in one place.
// Bump schemaVersion whenever the meaning of a key or value changes; Open refuses data written
// by a newer version instead of misreading it.
const schemaVersion = 1

var (
	// bucketMeta holds the schema version, the master-key check value and the digest signing key.
	bucketMeta = []byte("meta")
	// bucketConfigs maps configuration id (UUIDv7, so keys sort by creation time) to its JSON record.
	bucketConfigs = []byte("export_configurations")
	// bucketSecrets maps configuration id to its sealed secret access key.
	bucketSecrets = []byte("secrets")
	// bucketTokens maps token id to its JSON record, which holds the token's SHA-256, never the token.
	bucketTokens = []byte("api_tokens")
	// bucketEvents holds one nested bucket per segment of the event buffer, keyed by the
	// segment's first seq (8 bytes, big-endian); inside, seq -> encoded event (event.Record).
	bucketEvents = []byte("events")
	// bucketSegments maps a segment's key to its description (JSON): seq range, count, bytes,
	// when it was opened and last appended to.
	bucketSegments = []byte("event_segments")
	// bucketJobs maps export job id (UUIDv7: time-ordered) to its JSON record.
	bucketJobs = []byte("export_jobs")
	// bucketTasks maps <job id>/<4-byte index> to the JSON record of one exported object.
	bucketTasks = []byte("export_tasks")
)

var allBuckets = [][]byte{bucketMeta, bucketConfigs, bucketSecrets, bucketTokens, bucketEvents, bucketSegments, bucketJobs, bucketTasks}

var (
	keySchemaVersion  = []byte("schema_version")
	keyMasterKeyCheck = []byte("master_key_check")
	// keyNextSeq is the seq the next accepted event gets (8 bytes, big-endian).
	keyNextSeq = []byte("next_event_seq")
	// keyDroppedEvents counts events the age limit removed before they were exported.
	keyDroppedEvents = []byte("dropped_events")
	// keyDigestSigningKey is the Ed25519 seed that signs export digests, sealed under the master key.
	keyDigestSigningKey = []byte("digest_signing_key")
)
