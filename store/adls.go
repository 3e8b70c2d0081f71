package store

import (
	"net/url"
	"regexp"
	"strings"
)

// Azure's naming rules for ADLS Gen2 destinations.
var (
	// Storage account names: 3 to 24 lower-case letters and digits.
	storageAccountPattern = regexp.MustCompile(`^[a-z0-9]{3,24}$`)
	// File system (container) names: 3 to 63 lower-case letters, digits and single hyphens,
	// starting and ending with a letter or digit.
	fileSystemPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9]|-[a-z0-9]){2,62}$`)
)

// maxSASTokenBytes bounds a SAS token; real ones are a few hundred bytes.
const maxSASTokenBytes = 4096

// validateADLS reports what is wrong with an ADLS destination's fields.
func (c *ExportConfiguration) validateADLS(errs *fieldErrors) {
	if !storageAccountPattern.MatchString(c.StorageAccount) {
		errs.add("storageAccount", "must be 3 to 24 lower-case letters and digits")
	}
	if len(c.FileSystem) < 3 || len(c.FileSystem) > 63 || !fileSystemPattern.MatchString(c.FileSystem) {
		errs.add("fileSystem", "must be 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit, without two hyphens in a row")
	}
	if c.Endpoint != "" {
		if msg := validateBlobEndpoint(c.Endpoint); msg != "" {
			errs.add("endpoint", msg)
		}
	}
	for field, set := range map[string]bool{
		"bucket": c.Bucket != "", "region": c.Region != "", "accessKeyId": c.AccessKeyID != "", "roleArn": c.RoleARN != "",
		"serverSideEncryption": c.ServerSideEncryption != "", "sseKmsKeyId": c.SSEKMSKeyID != "",
	} {
		if set {
			errs.add(field, "is not used by ADLS configurations")
		}
	}
}

// validateBlobEndpoint accepts the base URL of a blob service: scheme, host, optional port and
// an optional path (Azurite serves its account under /devstoreaccount1).
func validateBlobEndpoint(endpoint string) string {
	return validateBaseURL(endpoint, true, "must be a blob service base URL such as https://account.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1")
}

// ValidateSASToken checks a SAS token's shape without ever repeating it: a query string that
// carries a signature (sig) and a version (sv). A leading '?' (as the portal copies it) is allowed.
func ValidateSASToken(token string) error {
	fail := func(msg string) error { return &ValidationError{Fields: []FieldError{{"sasToken", msg}}} }
	token = strings.TrimPrefix(token, "?")
	if token == "" || len(token) > maxSASTokenBytes {
		return fail("must be a SAS token of at most 4096 characters")
	}
	for i := 0; i < len(token); i++ {
		if token[i] < 0x21 || token[i] > 0x7e {
			return fail("may contain only printable ASCII characters without spaces")
		}
	}
	q, err := url.ParseQuery(token)
	if err != nil || q.Get("sig") == "" || q.Get("sv") == "" {
		return fail("must be a SAS token such as sv=...&sp=cw&sig=... (a query string with sv and sig)")
	}
	return nil
}
