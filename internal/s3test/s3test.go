// Package s3test gives tests the real S3 server (MinIO on loopback) that scripts/s3-server.sh
// started, and administers it: buckets, users, IAM policies, reading objects back.
//
// Without the server the tests skip locally, but under CI=true they fail: CI must test for real.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditexport/auditexport/internal/testneed"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Server is the test S3 server.
type Server struct {
	Endpoint     string
	RootUser     string
	RootPassword string
	// Bucket and the PutOnly user were created by the start script: the user may only PutObject
	// into Bucket.
	Bucket                          string
	PutOnlyAccessKey, PutOnlySecret string
	// KMSKey is the id of the server's one KMS key, for SSE-KMS.
	KMSKey                           string
	MinioBin, mc, mcConfigDir, alias string
}

// Require returns the server from AUDITEXPORT_TEST_* variables (see scripts/s3-server.sh).
func Require(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		Endpoint:         os.Getenv("AUDITEXPORT_TEST_S3_ENDPOINT"),
		RootUser:         os.Getenv("AUDITEXPORT_TEST_S3_ROOT_USER"),
		RootPassword:     os.Getenv("AUDITEXPORT_TEST_S3_ROOT_PASSWORD"),
		Bucket:           os.Getenv("AUDITEXPORT_TEST_S3_BUCKET"),
		PutOnlyAccessKey: os.Getenv("AUDITEXPORT_TEST_S3_PUTONLY_ACCESS_KEY"),
		PutOnlySecret:    os.Getenv("AUDITEXPORT_TEST_S3_PUTONLY_SECRET_KEY"),
		KMSKey:           os.Getenv("AUDITEXPORT_TEST_S3_KMS_KEY"),
		MinioBin:         os.Getenv("AUDITEXPORT_TEST_MINIO"),
		mc:               os.Getenv("AUDITEXPORT_TEST_MC"),
		mcConfigDir:      os.Getenv("AUDITEXPORT_TEST_MC_CONFIG_DIR"),
		alias:            os.Getenv("AUDITEXPORT_TEST_MC_ALIAS"),
	}
	if s.Endpoint == "" || s.mc == "" {
		testneed.Missing(t, "no test S3 server: run `make test`, or `scripts/with-s3-server.sh go test ./...`")
	}
	return s
}

// MC runs the MinIO client against the server and returns its output.
func (s *Server) MC(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.mc, append([]string{"--config-dir", s.mcConfigDir, "--quiet", "--no-color"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func randomSuffix() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// NewBucket creates a bucket for one test.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "t-" + randomSuffix()
	s.MC(t, "mb", s.alias+"/"+name)
	return name
}

// EmptyBucket makes the bucket name exist and hold nothing: a test that needs a fixed name (the
// compose demo's) must not find objects an earlier run against the same server left there.
func (s *Server) EmptyBucket(t testing.TB, name string) {
	t.Helper()
	s.MC(t, "mb", "--ignore-existing", s.alias+"/"+name)
	s.MC(t, "rm", "--recursive", "--force", s.alias+"/"+name)
}

// PutOnlyPolicy allows s3:PutObject on bucket and nothing else: all a customer grants.
func PutOnlyPolicy(bucket string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, bucket)
}

// ReadOnlyPolicy allows reading bucket but not writing to it.
func ReadOnlyPolicy(bucket string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"]}]}`, bucket, bucket)
}

// NewUser creates a user with policy attached (none when policy is ""); MinIO enforces IAM
// policies, not bucket policies, for authenticated users.
func (s *Server) NewUser(t testing.TB, policy string) (accessKey, secretKey string) {
	t.Helper()
	accessKey, secretKey = "u-"+randomSuffix(), "s-"+randomSuffix()+randomSuffix()
	s.CreateUser(t, accessKey, secretKey, policy)
	return accessKey, secretKey
}

// CreateUser creates the user accessKey with policy attached (none when policy is "").
func (s *Server) CreateUser(t testing.TB, accessKey, secretKey, policy string) {
	t.Helper()
	s.MC(t, "admin", "user", "add", s.alias, accessKey, secretKey)
	if policy != "" {
		s.AttachPolicy(t, accessKey, policy)
	}
}

// AttachPolicy creates policy as "p-<user>" and attaches it to user.
func (s *Server) AttachPolicy(t testing.TB, user, policy string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(file, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	s.MC(t, "admin", "policy", "create", s.alias, "p-"+user, file)
	s.MC(t, "admin", "policy", "attach", s.alias, "p-"+user, "--user", user)
}

// DetachPolicy detaches the policy AttachPolicy attached.
func (s *Server) DetachPolicy(t testing.TB, user string) {
	t.Helper()
	s.MC(t, "admin", "policy", "detach", s.alias, "p-"+user, "--user", user)
}

// Admin is an S3 client with the root credentials, for reading back what the service wrote.
func (s *Server) Admin() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.RootUser, s.RootPassword, ""),
	})
}

// Keys lists the object keys under prefix in bucket.
func (s *Server) Keys(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.Admin(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// Head is what the server keeps about an object, checksums included (a checksum is there only
// when the upload sent one), read with the admin credentials.
func (s *Server) Head(t testing.TB, bucket, key string) *s3.HeadObjectOutput {
	t.Helper()
	out, err := s.Admin().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatalf("head %s/%s: %v", bucket, key, err)
	}
	return out
}

// Get reads an object with the admin credentials.
func (s *Server) Get(t testing.TB, bucket, key string) []byte {
	t.Helper()
	out, err := s.Admin().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// ServiceAWS is the service's own AWS configuration, loaded the way the server loads it, with
// the given identity and STS endpoint (AWS_ENDPOINT_URL_STS).
func ServiceAWS(t *testing.T, accessKey, secret, stsEndpoint string) aws.Config {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if stsEndpoint != "" {
		t.Setenv("AWS_ENDPOINT_URL_STS", stsEndpoint)
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secret, "")))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
