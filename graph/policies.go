package graph

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/auditexport/auditexport/graph/model"
)

// The IAM policies a customer pastes so the service may write their exports, derived from the
// destination as the exporter writes to it: every object (exports, digests, verification objects)
// goes under <path>/ with PutObject, multipart uploads included; with SSE-KMS and a named key the
// identity also needs kms:GenerateDataKey, and kms:Decrypt to complete a multipart upload. The
// account's aws/s3 key needs no statement: its key policy admits the account's principals through S3.

// placeholderPrincipal stands in the trust policy until the operator sets --trust-principal.
const placeholderPrincipal = "<the AWS principal auditexport runs as: set --trust-principal>"

var (
	accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)
	// An account root, role, user or assumed-role ARN of IAM or STS, in any partition.
	principalARNPattern = regexp.MustCompile(`^arn:aws(-[a-z]+)*:(iam::[0-9]{12}:(root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+)|sts::[0-9]{12}:assumed-role/[\w+=,.@/-]+)$`)
)

// ParseTrustPrincipal checks --trust-principal: a 12-digit account id (its root is then trusted,
// in the role's partition) or a principal ARN. Empty is allowed: trust policies then carry a
// placeholder.
func ParseTrustPrincipal(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || accountIDPattern.MatchString(s) || principalARNPattern.MatchString(s) {
		return s, nil
	}
	return "", fmt.Errorf("trust principal %q: want a 12-digit AWS account id or an IAM principal ARN such as arn:aws:iam::123456789012:role/auditexport", s)
}

type policyDocument struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

type policyStatement struct {
	Sid       string                       `json:"Sid,omitempty"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal,omitempty"`
	Action    any                          `json:"Action"`
	Resource  string                       `json:"Resource,omitempty"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

func (d policyDocument) String() string {
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		panic(err) // only strings and maps of strings: cannot fail
	}
	return string(out)
}

// trustPolicy lets principal assume roleARN with the configuration id as sts:ExternalId.
func trustPolicy(principal, roleARN, externalID string) string {
	switch {
	case principal == "":
		principal = placeholderPrincipal
	case accountIDPattern.MatchString(principal):
		principal = "arn:" + arnPartition(roleARN) + ":iam::" + principal + ":root"
	}
	return policyDocument{Version: "2012-10-17", Statement: []policyStatement{{
		Sid: "AuditExportAssumeRole", Effect: "Allow", Principal: map[string]string{"AWS": principal},
		Action: "sts:AssumeRole", Condition: map[string]map[string]string{"StringEquals": {"sts:ExternalId": externalID}},
	}}}.String()
}

// s3Destination is what the permission policy depends on.
type s3Destination struct {
	partition, bucket, region string
	path, kmsKey              *string
	sse                       *model.S3ServerSideEncryption
}

// permissionPolicy allows what the exporter does to the destination, and nothing else.
func permissionPolicy(d s3Destination) string {
	prefix := d.bucket + "/"
	if p := deref(d.path); p != "" {
		prefix += p + "/"
	}
	doc := policyDocument{Version: "2012-10-17", Statement: []policyStatement{{
		Sid: "AuditExportPutObjects", Effect: "Allow", Action: "s3:PutObject",
		Resource: "arn:" + d.partition + ":s3:::" + prefix + "*",
	}}}
	if key := deref(d.kmsKey); key != "" && deref(d.sse) == model.S3ServerSideEncryptionAWSKms {
		kms := policyStatement{Sid: "AuditExportEncryptObjects", Effect: "Allow", Action: []string{"kms:GenerateDataKey", "kms:Decrypt"}}
		if strings.HasPrefix(key, "arn:") && strings.Contains(key, ":key/") {
			kms.Resource = key
		} else {
			// An alias or a bare key id names no key ARN an IAM policy can match without the
			// customer's account id: allow key use only through S3 in the bucket's region.
			kms.Resource = "*"
			kms.Condition = map[string]map[string]string{"StringEquals": {"kms:ViaService": "s3." + d.region + ".amazonaws.com"}}
		}
		doc.Statement = append(doc.Statement, kms)
	}
	return doc.String()
}

// arnPartition is the partition of an ARN (aws, aws-cn, aws-us-gov, …).
func arnPartition(arn string) string {
	if parts := strings.SplitN(arn, ":", 3); len(parts) == 3 && parts[0] == "arn" && parts[1] != "" {
		return parts[1]
	}
	return "aws"
}

// regionPartition is the partition of an AWS region; other names (S3-compatible servers) get aws.
func regionPartition(region string) string {
	for _, p := range []struct{ prefix, partition string }{
		{"cn-", "aws-cn"}, {"us-gov-", "aws-us-gov"}, {"us-isob-", "aws-iso-b"}, {"us-iso-", "aws-iso"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}
