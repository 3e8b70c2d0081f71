package bolt

import (
	"encoding/binary"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// Every bucket the engine uses is declared here, so the file's layout reads in one place. Bump
// schemaVersion whenever the meaning of a key or value changes, and add the step that upgrades
// a file from the version before (migrate.go); Open refuses a file written by a newer version
// instead of misreading it.
const schemaVersion = 5

var (
	// bucketMeta holds the schema version and the store's metadata (master-key check, digest
	// signing key, counters).
	bucketMeta = []byte("meta")
	// bucketConfigs maps configuration id (UUIDv7, so keys sort by creation time) to its JSON record.
	bucketConfigs = []byte("export_configurations")
	// bucketConfigNames maps a configuration's name to its id (names are unique).
	bucketConfigNames = []byte("export_configuration_names")
	// bucketConfigsByCursor, bucketConfigsByCheckDue and bucketConfigsByScheduleDue index the
	// enabled configurations: <8-byte key><id> -> nothing, the key being the cursor, or
	// NextCheckAt and ScheduleDueAt as timeKey.
	bucketConfigsByCursor      = []byte("export_configurations_by_cursor")
	bucketConfigsByCheckDue    = []byte("export_configurations_by_check_due")
	bucketConfigsByScheduleDue = []byte("export_configurations_by_schedule_due")
	// bucketSecrets maps configuration id to its sealed secret.
	bucketSecrets = []byte("secrets")
	// bucketTokens maps token id to its JSON record, which holds the token's SHA-256, never the token.
	bucketTokens = []byte("api_tokens")
	// bucketTokenNames maps a token's lower-cased name to its id.
	bucketTokenNames = []byte("api_token_names")
	// bucketEvents holds one nested bucket per segment of the event buffer, keyed by the
	// segment's first seq (8 bytes, big-endian); inside, the seq of a chunk's first event -> a
	// bucket holding the chunk (chunks.go; schema 5), or the chunk itself (schemas 3 and 4), or,
	// written by schema 2, seq -> encoded event (event.Record).
	bucketEvents = []byte("events")
	// bucketSegments maps a segment's key to its description (JSON): seq range, count, bytes,
	// when it was opened and last appended to, whether it is sealed.
	bucketSegments = []byte("event_segments")
	// bucketEventIDs maps a sealed segment's key to a bucket holding the sorted 16-byte ids of
	// its events (schema 5; before, to the ids themselves): the dedup index, searched when the
	// in-memory fingerprints say an id may be there.
	bucketEventIDs = []byte("event_ids")
	// bucketJobs maps export job id (UUIDv7: time-ordered) to its JSON record.
	bucketJobs = []byte("export_jobs")
	// bucketJobsByConfig maps <configuration id><job id> to nothing: a configuration's jobs in
	// creation order.
	bucketJobsByConfig = []byte("export_jobs_by_configuration")
	// bucketUnfinishedJobs maps the id of each job not SUCCEEDED to nothing.
	bucketUnfinishedJobs = []byte("export_jobs_unfinished")
	// bucketTasks maps <job id>/<4-byte index> to the JSON record of one exported object.
	bucketTasks = []byte("export_tasks")
)

var allBuckets = [][]byte{
	bucketMeta, bucketConfigs, bucketConfigNames, bucketConfigsByCursor, bucketConfigsByCheckDue, bucketConfigsByScheduleDue,
	bucketSecrets, bucketTokens, bucketTokenNames, bucketEvents, bucketSegments, bucketEventIDs,
	bucketJobs, bucketJobsByConfig, bucketUnfinishedJobs, bucketTasks,
}

var (
	keySchemaVersion = []byte("schema_version")
	// keyNextSeq is the seq the next accepted event gets (8 bytes, big-endian).
	keyNextSeq = []byte("next_event_seq")
)

// schemaOf reads the file's schema version: 0 for a new file.
func schemaOf(tx *bbolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(keySchemaVersion)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("schema version record is corrupt")
	}
	return binary.BigEndian.Uint64(v), nil
}
