package store

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkValidator runs a validator over inputs mapped to whether each is valid.
func checkValidator(t *testing.T, validate func(string) string, tests map[string]bool) {
	t.Helper()
	for input, valid := range tests {
		t.Run(input, func(t *testing.T) {
			t.Parallel()
			if msg := validate(input); (msg == "") != valid {
				t.Errorf("validate(%q) = %q, want valid=%v", input, msg, valid)
			}
		})
	}
}

func TestValidateBucket(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"my-bucket":             true,
		"abc":                   true,
		"a.b.c":                 true,
		"logs-2026":             true,
		strings.Repeat("a", 63): true,
		"ab":                    false,
		strings.Repeat("a", 64): false,
		"My-Bucket":             false,
		"my_bucket":             false,
		"-bucket":               false,
		"bucket-":               false,
		"a..b":                  false,
		"a.-b":                  false,
		"192.168.5.4":           false,
		"xn--bucket":            false,
		"sthree-bucket":         false,
		"amzn-s3-demo-bucket":   false,
		"bucket-s3alias":        false,
		"bucket--ol-s3":         false,
		"bucket.mrap":           false,
		"bucket--x-s3":          false,
		"bucket--table-s3":      false,
		"bücket":                false,
		"bucket with spaces":    false,
		"":                      false,
	}
	checkValidator(t, validateBucket, tests)
}

func TestValidatePath(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"":                             true,
		"audit":                        true,
		"audit/logs":                   true,
		"your-optional-s3-bucket-path": true,
		"tenant=acme/audit":            true,
		"a.b/c_d/(x)*!'+":              true,
		strings.Repeat("a", 512):       true,
		strings.Repeat("a", 513):       false,
		"/audit":                       false,
		"audit/":                       false,
		"a//b":                         false,
		"..":                           false,
		"a/../b":                       false,
		"a/./b":                        false,
		"a\\b":                         false,
		"a b":                          false,
		"a\x00b":                       false,
		"a\nb":                         false,
		"caf\u00e9":                    false,
		"a\u202eb":                     false, // right-to-left override
		"a\u200bb":                     false, // zero-width space
		"a\uff0fb":                     false, // fullwidth solidus
		"a%2F..%2Fb":                   false,
	}
	checkValidator(t, validatePath, tests)
}

func TestValidateRegion(t *testing.T) {
	t.Parallel()
	type tc struct {
		region string
		custom bool
		valid  bool
	}
	tests := map[string]tc{
		"aws":               {"us-east-1", false, true},
		"aws gov":           {"us-gov-west-1", false, true},
		"aws china":         {"cn-northwest-1", false, true},
		"aws iso":           {"us-isob-east-1", false, true},
		"aws two digits":    {"ap-southeast-10", false, true},
		"free form on aws":  {"auto", false, false},
		"upper case":        {"US-EAST-1", false, false},
		"empty":             {"", false, false},
		"no number":         {"us-east", false, false},
		"custom auto":       {"auto", true, true},
		"custom garage":     {"garage", true, true},
		"custom bad":        {"Bad Region", true, false},
		"custom too long":   {strings.Repeat("a", 33), true, false},
		"custom aws format": {"eu-west-3", true, true},
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if msg := validateRegion(c.region, c.custom); (msg == "") != c.valid {
				t.Errorf("validateRegion(%q, %v) = %q, want valid=%v", c.region, c.custom, msg, c.valid)
			}
		})
	}
}

func TestValidateRoleARN(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"arn:aws:iam::123456789012:role/auditexport":                true,
		"arn:aws:iam::123456789012:role/service/audit-export":       true,
		"arn:aws-us-gov:iam::123456789012:role/x":                   true,
		"arn:aws-cn:iam::123456789012:role/a+b=c,d.e@f-g_h":         true,
		"arn:aws:iam::123456789012:role/" + strings.Repeat("r", 64): true,
		"arn:aws:iam::123456789012:role/" + strings.Repeat("r", 65): false,
		"arn:aws:iam::12345678901:role/x":                           false,
		"arn:aws:iam::123456789012:user/x":                          false,
		"arn:aws:iam::123456789012:role/":                           false,
		"arn:aws:iam::123456789012:role//x":                         false,
		"arn:aws:s3:::bucket":                                       false,
		"arn:aws:iam:us-east-1:123456789012:role/x":                 false,
		"role/x": false,
		"":       false,
	}
	checkValidator(t, validateRoleARN, tests)
}

func TestValidateEndpoint(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"http://127.0.0.1:9000":          true,
		"https://s3.example.com":         true,
		"https://s3.example.com/":        true,
		"http://[::1]:9000":              true,
		"ftp://s3.example.com":           false,
		"s3.example.com":                 false,
		"https://":                       false,
		"https://user:pw@s3.example.com": false,
		"https://s3.example.com/path":    false,
		"https://s3.example.com?x=1":     false,
		"https://s3.example.com#frag":    false,
		"https://s3.example.com:0":       false,
		"https://s3.example.com:70000":   false,
		"https://s3.example.com:abc":     false,
		"http://s3 example.com":          false,
	}
	checkValidator(t, validateEndpoint, tests)
}

func TestValidateSecretAccessKeyNeverEchoesSecret(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"short", "has a space in it", strings.Repeat("s", 2000), "tab\tinside!"} {
		err := ValidateSecretAccessKey(secret)
		if err == nil {
			t.Fatalf("ValidateSecretAccessKey(%q) accepted an invalid secret", secret)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q repeats the secret", err)
		}
	}
	if err := ValidateSecretAccessKey("YOUR/SECRET/ACCESSKEY"); err != nil {
		t.Errorf("Immuta's example secret refused: %v", err)
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	t.Parallel()
	c := ExportConfiguration{Kind: KindS3AssumedRole, Interval: "EVERY_3_HOURS", Bucket: "B", Path: "/p", Region: "x", RoleARN: "nope", AccessKeyID: "AKIA",
		ServerSideEncryption: "aws:kms", SSEKMSKeyID: "key with spaces"}
	err := c.Validate()
	v, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("Validate() = %v, want *ValidationError", err)
	}
	got := map[string]bool{}
	for _, f := range v.Fields {
		got[f.Field] = true
	}
	for _, field := range []string{"interval", "bucket", "path", "region", "roleArn", "accessKeyId", "sseKmsKeyId"} {
		if !got[field] {
			t.Errorf("no error for field %s in %v", field, err)
		}
	}
}

// The fuzz targets check properties that must hold for every accepted input, not just that the
// validators do not panic.

func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"", "audit", "a/b", "/a", "a/../b", "a//b", "tenant=x/y", "caf\u00e9", "a\u202eb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if validatePath(path) != "" {
			return
		}
		if len(path) > MaxPathBytes || strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") {
			t.Fatalf("accepted %q", path)
		}
		for _, seg := range strings.Split(path, "/") {
			if path != "" && (seg == "" || seg == "." || seg == "..") {
				t.Fatalf("accepted %q with segment %q", path, seg)
			}
		}
		for i := 0; i < len(path); i++ {
			if path[i] < 0x21 || path[i] > 0x7e || path[i] == '\\' {
				t.Fatalf("accepted %q with byte %#x", path, path[i])
			}
		}
	})
}

func FuzzValidateBucket(f *testing.F) {
	for _, s := range []string{"my-bucket", "a.b", "xn--a", "1.2.3.4", "A", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if validateBucket(name) != "" {
			return
		}
		if len(name) < 3 || len(name) > 63 || strings.Contains(name, "..") || strings.ToLower(name) != name || !utf8.ValidString(name) {
			t.Fatalf("accepted %q", name)
		}
		if strings.ContainsAny(name, " /\\_:") {
			t.Fatalf("accepted %q", name)
		}
	})
}

func FuzzValidateRoleARN(f *testing.F) {
	for _, s := range []string{"arn:aws:iam::123456789012:role/x", "arn:aws:iam::1:role/x", "arn:aws:iam::123456789012:role/a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arn string) {
		if validateRoleARN(arn) != "" {
			return
		}
		if !strings.HasPrefix(arn, "arn:aws") || !strings.Contains(arn, ":role/") || strings.ContainsAny(arn, " \n\"'\\") {
			t.Fatalf("accepted %q", arn)
		}
	})
}

func FuzzValidateEndpoint(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:9000", "https://s3.example.com/", "https://u:p@h", "javascript:alert(1)", "http://h:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, endpoint string) {
		if validateEndpoint(endpoint) != "" {
			return
		}
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			t.Fatalf("accepted %q", endpoint)
		}
	})
}

func FuzzConfigurationValidate(f *testing.F) {
	f.Add("EVERY_12_HOURS", "your-s3-bucket", "your-optional-s3-bucket-path", "us-east-1", "", "AKIAEXAMPLE", "")
	f.Add("EVERY_HOUR", "b", "/x", "moon", "http://127.0.0.1:9000", "", "arn:aws:iam::123456789012:role/r")
	f.Fuzz(func(t *testing.T, interval, bucket, path, region, endpoint, accessKeyID, roleARN string) {
		for _, kind := range []Kind{KindS3AccessKey, KindS3AssumedRole} {
			c := ExportConfiguration{Kind: kind, Interval: Interval(interval), Bucket: bucket, Path: path,
				Region: region, Endpoint: endpoint, AccessKeyID: accessKeyID, RoleARN: roleARN}
			err := c.Validate()
			if err == nil {
				// Every part of an accepted configuration must pass its own rule.
				if validateBucket(bucket) != "" || validatePath(path) != "" || c.Interval.Duration() == 0 {
					t.Fatalf("accepted %+v", c)
				}
				continue
			}
			if _, ok := err.(*ValidationError); !ok {
				t.Fatalf("Validate returned %T, want *ValidationError", err)
			}
		}
	})
}

func TestValidateServerSideEncryption(t *testing.T) {
	t.Parallel()
	base := ExportConfiguration{Kind: KindS3AccessKey, Interval: EveryHour, Bucket: "audit-bucket", Region: "us-east-1", AccessKeyID: "AKIA1"}
	for _, c := range []struct {
		sse, key, field string
	}{
		{"", "", ""},
		{SSEAES256, "", ""},
		{SSEKMS, "", ""},
		{SSEKMS, "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", ""},
		{SSEKMS, "alias/audit-export", ""},
		{SSEKMS, "key with spaces", "sseKmsKeyId"},
		{SSEKMS, strings.Repeat("k", 1001), "sseKmsKeyId"},
		{SSEAES256, "alias/audit-export", "sseKmsKeyId"},
		{"", "alias/audit-export", "sseKmsKeyId"},
		{"aws:kms:dsse", "", "serverSideEncryption"},
	} {
		cfg := base
		cfg.ServerSideEncryption, cfg.SSEKMSKeyID = c.sse, c.key
		err := cfg.Validate()
		var v *ValidationError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%q %.30q: %v", c.sse, c.key, err)
		case c.field != "" && (!errors.As(err, &v) || v.Fields[0].Field != c.field):
			t.Errorf("%q %.30q: %v, want an error for %s", c.sse, c.key, err, c.field)
		}
	}
}
