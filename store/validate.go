package store

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// MaxPathBytes bounds a configuration's key prefix, leaving room in S3's 1,024-byte key for the
// partition directories and file name the exporter appends.
const MaxPathBytes = 512

var (
	// AWS region names: us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1, us-isob-east-1.
	awsRegionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	// S3-compatible servers use free-form regions such as "auto" (R2) or "garage".
	customRegionPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	// arn:<partition>:iam::<12-digit account>:role/<optional path/><name>
	roleARNPattern = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/([\w+=,.@-]+/)*([\w+=,.@-]{1,64})$`)
	// AWS access key ids are alphanumeric; S3-compatible servers allow a few more characters.
	accessKeyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._+=@-]{3,128}$`)
	// A KMS key id, alias (alias/name) or key or alias ARN.
	kmsKeyIDPattern   = regexp.MustCompile(`^[A-Za-z0-9:/_.+=@-]{1,1000}$`)
	tokenNamePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$`)
	configNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$`)
)

// bucketForbiddenPrefixes and bucketForbiddenSuffixes are reserved by AWS for its own features.
var (
	bucketForbiddenPrefixes = []string{"xn--", "sthree-", "amzn-s3-demo-"}
	bucketForbiddenSuffixes = []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"}
)

// validateBucket applies S3's naming rules for general purpose buckets and returns what is wrong,
// or "" when the name is valid.
func validateBucket(name string) string {
	if len(name) < 3 || len(name) > 63 {
		return "must be 3 to 63 characters long"
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return "may contain only lower-case letters, digits, dots and hyphens"
		}
	}
	if !isLowerAlnum(name[0]) || !isLowerAlnum(name[len(name)-1]) {
		return "must begin and end with a lower-case letter or digit"
	}
	// Each dot-separated label must itself be a valid DNS label.
	if strings.Contains(name, "..") || strings.Contains(name, ".-") || strings.Contains(name, "-.") {
		return "must not contain two adjacent dots or a dot next to a hyphen"
	}
	if ip := net.ParseIP(name); ip != nil {
		return "must not be formatted as an IP address"
	}
	for _, p := range bucketForbiddenPrefixes {
		if strings.HasPrefix(name, p) {
			return fmt.Sprintf("must not begin with %q", p)
		}
	}
	for _, s := range bucketForbiddenSuffixes {
		if strings.HasSuffix(name, s) {
			return fmt.Sprintf("must not end with %q", s)
		}
	}
	return ""
}

func isLowerAlnum(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }

// validatePath checks the key prefix the customer chose. It must be a clean relative prefix:
// a leading slash, "." or ".." segments, or odd characters would make keys that tools disagree on.
func validatePath(path string) string {
	if path == "" {
		return ""
	}
	if len(path) > MaxPathBytes {
		return fmt.Sprintf("must be at most %d bytes", MaxPathBytes)
	}
	if strings.HasPrefix(path, "/") {
		return "must not begin with '/'"
	}
	if strings.HasSuffix(path, "/") {
		return "must not end with '/'"
	}
	for _, r := range path {
		if !isPathRune(r) {
			return "may contain only ASCII letters, digits, '/' and ! - _ . * ' ( ) = +"
		}
	}
	for seg := range strings.SplitSeq(path, "/") {
		switch seg {
		case "":
			return "must not contain empty segments ('//')"
		case ".", "..":
			return "must not contain '.' or '..' segments"
		}
	}
	return ""
}

// isPathRune admits S3's "safe characters" plus '=' (Hive-style prefixes such as tenant=acme).
func isPathRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("/!-_.*'()=+", r)
}

func validateRegion(region string, customEndpoint bool) string {
	if awsRegionPattern.MatchString(region) {
		return ""
	}
	if customEndpoint {
		if customRegionPattern.MatchString(region) {
			return ""
		}
		return "must be lower-case letters, digits and hyphens, at most 32 characters"
	}
	return "must be an AWS region name such as us-east-1"
}

func validateRoleARN(arn string) string {
	if len(arn) > 2048 || !roleARNPattern.MatchString(arn) {
		return "must be an IAM role ARN such as arn:aws:iam::123456789012:role/auditexport"
	}
	return ""
}

// validateEndpoint accepts the base URL of an S3-compatible server. User info is refused because
// it would put credentials where the configuration is displayed.
func validateEndpoint(endpoint string) string {
	return validateBaseURL(endpoint, false, "must be a base URL such as https://s3.example.com:9000 (scheme, host and optional port)")
}

// validateBaseURL accepts an http or https URL with a host, an optional port and, when
// withPath, a path without "..": no user credentials (they would show where the configuration
// is displayed), query or fragment. want is the message for any other shape.
func validateBaseURL(endpoint string, withPath bool, want string) string {
	if len(endpoint) > 2048 {
		return want
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return want
	}
	if u.User != nil {
		return "must not contain user credentials"
	}
	pathOK := u.Path == "" || u.Path == "/" || (withPath && !strings.Contains(u.Path, ".."))
	if !pathOK || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return want
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "has an invalid port"
		}
	}
	return ""
}

// validateS3 reports what is wrong with an S3 destination's fields.
func (c *ExportConfiguration) validateS3(errs *fieldErrors) {
	if msg := validateBucket(c.Bucket); msg != "" {
		errs.add("bucket", msg)
	}
	if c.Endpoint != "" {
		if msg := validateEndpoint(c.Endpoint); msg != "" {
			errs.add("endpoint", msg)
		}
	}
	if msg := validateRegion(c.Region, c.Endpoint != ""); msg != "" {
		errs.add("region", msg)
	}
	if c.StorageAccount != "" || c.FileSystem != "" {
		errs.add("storageAccount", "is used only by ADLS configurations")
	}
	if c.Kind == KindS3AccessKey {
		if !accessKeyIDPattern.MatchString(c.AccessKeyID) {
			errs.add("accessKeyId", "must be 3 to 128 letters, digits or . _ + = @ -")
		}
		if c.RoleARN != "" {
			errs.add("roleArn", "is not used by access-key configurations")
		}
	} else {
		if msg := validateRoleARN(c.RoleARN); msg != "" {
			errs.add("roleArn", msg)
		}
		if c.AccessKeyID != "" {
			errs.add("accessKeyId", "is not used by assumed-role configurations")
		}
	}
	switch c.ServerSideEncryption {
	case "", SSEAES256:
		if c.SSEKMSKeyID != "" {
			errs.add("sseKmsKeyId", "is used only with server-side encryption aws:kms")
		}
	case SSEKMS:
		if c.SSEKMSKeyID != "" && !kmsKeyIDPattern.MatchString(c.SSEKMSKeyID) {
			errs.add("sseKmsKeyId", "must be a KMS key id, alias/<name>, or a key or alias ARN")
		}
	default:
		errs.add("serverSideEncryption", fmt.Sprintf("must be %s or %s, not %q", SSEAES256, SSEKMS, c.ServerSideEncryption))
	}
}

// ValidateSecret checks the shape of a configuration kind's secret without repeating it.
func ValidateSecret(kind Kind, secret string) error {
	if kind == KindADLSSASToken {
		return ValidateSASToken(secret)
	}
	return ValidateSecretAccessKey(secret)
}

// ValidateSecretAccessKey checks a secret's shape without ever repeating it.
func ValidateSecretAccessKey(secret string) error {
	if len(secret) < 8 || len(secret) > 1024 {
		return &ValidationError{Fields: []FieldError{{"secretAccessKey", "must be 8 to 1024 characters long"}}}
	}
	for i := 0; i < len(secret); i++ {
		if secret[i] < 0x21 || secret[i] > 0x7e {
			return &ValidationError{Fields: []FieldError{{"secretAccessKey", "may contain only printable ASCII characters without spaces"}}}
		}
	}
	return nil
}

// Validate reports every invalid field of c. The store calls it before each write, so an invalid
// configuration is never stored, whoever the caller.
func (c *ExportConfiguration) Validate() error {
	var errs fieldErrors
	if c.Name != "" && !configNamePattern.MatchString(c.Name) {
		errs.add("name", "must be 1 to 64 lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit")
	}
	if _, err := uuid.Parse(c.Name); c.Name != "" && err == nil {
		errs.add("name", "must not be a UUID: commands take a name or an id")
	}
	if c.Interval.Duration() == 0 {
		errs.add("interval", fmt.Sprintf("unknown interval %q", c.Interval))
	}
	if msg := validatePath(c.Path); msg != "" {
		errs.add("path", msg)
	}
	switch c.Kind {
	case KindS3AccessKey, KindS3AssumedRole:
		c.validateS3(&errs)
	case KindADLSSASToken:
		c.validateADLS(&errs)
	default:
		errs.add("kind", fmt.Sprintf("unknown destination kind %q", c.Kind))
	}
	return errs.err()
}

func validateTokenName(name string) error {
	if !tokenNamePattern.MatchString(name) {
		return &ValidationError{Fields: []FieldError{{"name", "must be 1 to 64 letters, digits, spaces or . _ @ -, starting with a letter or digit"}}}
	}
	return nil
}
