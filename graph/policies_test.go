package graph

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/99designs/gqlgen/client"

	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

func TestParseTrustPrincipal(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{
		"":                                  true,
		"123456789012":                      true,
		" 123456789012 ":                    true,
		"arn:aws:iam::123456789012:root":    true,
		"arn:aws:iam::123456789012:role/ax": true,
		"arn:aws-us-gov:iam::123456789012:role/path/ax": true,
		"arn:aws:sts::123456789012:assumed-role/ax/s":   true,
		"12345678901":                            false,
		"arn:aws:iam::123456789012:group/admins": false,
		"arn:aws:s3:::bucket":                    false,
		`arn:aws:iam::123456789012:role/"}`:      false,
		"*":                                      false,
	} {
		if _, err := ParseTrustPrincipal(in); (err == nil) != ok {
			t.Errorf("ParseTrustPrincipal(%q) = %v, want ok %v", in, err, ok)
		}
	}
}

// policy decodes a policy document, failing the test unless it is JSON.
func policy(t *testing.T, doc string) policyDocument {
	t.Helper()
	var d struct {
		Version   string
		Statement []struct {
			Sid, Effect, Resource string
			Principal             map[string]string
			Action                any
			Condition             map[string]map[string]string
		}
	}
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatalf("policy is not JSON: %v\n%s", err, doc)
	}
	out := policyDocument{Version: d.Version}
	for _, s := range d.Statement {
		out.Statement = append(out.Statement, policyStatement{Sid: s.Sid, Effect: s.Effect, Resource: s.Resource,
			Principal: s.Principal, Action: fmt.Sprint(s.Action), Condition: s.Condition})
	}
	return out
}

// TestPoliciesThroughTheAPI: each configuration kind answers the policies its identity needs,
// for its bucket, path, partition and key, and the trust policy names the configured principal
// and the externalId the service sends.
func TestPoliciesThroughTheAPI(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, filepath.Join(t.TempDir(), "auditexport.db"), storetest.Key())
	admin := store.Principal{Name: "admin", Permissions: []store.Permission{store.PermissionAdmin}}
	create := func(c store.ExportConfiguration, secret string) string {
		c.Interval, c.Enabled = store.EveryHour, true
		created, err := st.CreateConfiguration(t.Context(), c, secret, admin)
		if err != nil {
			t.Fatal(err)
		}
		return created.ID
	}
	role := create(store.ExportConfiguration{Kind: store.KindS3AssumedRole, Bucket: "gov-bucket", Path: "audit/acme", Region: "us-gov-west-1",
		RoleARN: "arn:aws-us-gov:iam::210987654321:role/auditexport", ServerSideEncryption: store.SSEKMS, SSEKMSKeyID: "alias/audit"}, "")
	key := create(store.ExportConfiguration{Kind: store.KindS3AccessKey, Bucket: "cn-bucket", Region: "cn-north-1", AccessKeyID: "AKIAEXAMPLE",
		ServerSideEncryption: store.SSEKMS, SSEKMSKeyID: "arn:aws-cn:kms:cn-north-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab"}, "secret-access-key")
	plain := create(store.ExportConfiguration{Kind: store.KindS3AccessKey, Bucket: "plain-bucket", Region: "eu-west-1", AccessKeyID: "AKIAEXAMPLE",
		ServerSideEncryption: store.SSEKMS}, "secret-access-key") // the account's aws/s3 key: no KMS statement

	query := func(principal, id string) (trust, permissions string) {
		h := NewHandler(HandlerConfig{Resolver: &Resolver{Store: st, TrustPrincipal: principal}})
		c := client.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), admin)))
		}))
		var out struct {
			GetExportConfiguration struct {
				EndpointConfiguration struct{ TrustPolicy, PermissionPolicy string }
			}
		}
		c.MustPost(fmt.Sprintf(`{ getExportConfiguration(id: %q) { endpointConfiguration {
			... on S3AssumedRoleEndpointConfiguration { trustPolicy permissionPolicy }
			... on S3AccessKeyEndpointConfiguration { permissionPolicy } } } }`, id), &out)
		return out.GetExportConfiguration.EndpointConfiguration.TrustPolicy, out.GetExportConfiguration.EndpointConfiguration.PermissionPolicy
	}

	trust, perms := query("123456789012", role)
	tp := policy(t, trust)
	if tp.Version != "2012-10-17" || len(tp.Statement) != 1 {
		t.Fatalf("trust policy %s", trust)
	}
	s := tp.Statement[0]
	if s.Effect != "Allow" || s.Action != "sts:AssumeRole" || s.Principal["AWS"] != "arn:aws-us-gov:iam::123456789012:root" ||
		s.Condition["StringEquals"]["sts:ExternalId"] != role {
		t.Fatalf("trust statement %+v, want the account's root in the role's partition and ExternalId %s", s, role)
	}
	pp := policy(t, perms)
	if len(pp.Statement) != 2 || pp.Statement[0].Action != "s3:PutObject" || pp.Statement[0].Resource != "arn:aws-us-gov:s3:::gov-bucket/audit/acme/*" ||
		pp.Statement[1].Action != "[kms:GenerateDataKey kms:Decrypt]" || pp.Statement[1].Resource != "*" ||
		pp.Statement[1].Condition["StringEquals"]["kms:ViaService"] != "s3.us-gov-west-1.amazonaws.com" {
		t.Fatalf("assumed role's permission policy %+v", pp)
	}

	if trust, _ := query("arn:aws:iam::123456789012:role/auditexport-service", role); policy(t, trust).Statement[0].Principal["AWS"] != "arn:aws:iam::123456789012:role/auditexport-service" {
		t.Fatalf("an ARN principal is named as given: %s", trust)
	}
	if trust, _ := query("", role); policy(t, trust).Statement[0].Principal["AWS"] != placeholderPrincipal {
		t.Fatalf("without a principal: %s", trust)
	}

	_, perms = query("", key)
	pp = policy(t, perms)
	if len(pp.Statement) != 2 || pp.Statement[0].Resource != "arn:aws-cn:s3:::cn-bucket/*" ||
		pp.Statement[1].Resource != "arn:aws-cn:kms:cn-north-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab" || pp.Statement[1].Condition != nil {
		t.Fatalf("access key's permission policy %+v", pp)
	}
	_, perms = query("", plain)
	if pp := policy(t, perms); len(pp.Statement) != 1 || pp.Statement[0].Resource != "arn:aws:s3:::plain-bucket/*" {
		t.Fatalf("with the account's aws/s3 key: %+v", pp)
	}
}
