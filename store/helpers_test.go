package store_test

import (
	"errors"

	"github.com/auditexport/auditexport/store"
)

var alice = store.Principal{TokenID: "t-alice", Name: "alice"}

func isValidation(err error, field string) bool {
	var v *store.ValidationError
	if !errors.As(err, &v) {
		return false
	}
	for _, f := range v.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}

const testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

func accessKeyConfig() store.ExportConfiguration {
	return store.ExportConfiguration{
		Kind: store.KindS3AccessKey, Interval: store.Every12Hours, Enabled: true,
		Bucket: "audit-bucket", Path: "audit/logs", Region: "us-east-1", AccessKeyID: "AKIAIOSFODNN7EXAMPLE",
	}
}
