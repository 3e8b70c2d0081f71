package store_test

import (
	"github.com/auditexport/auditexport/store"
	"github.com/auditexport/auditexport/store/storetest"
)

var alice = store.Principal{TokenID: "t-alice", Name: "alice"}

const testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

func accessKeyConfig() store.ExportConfiguration {
	return store.ExportConfiguration{
		Kind: store.KindS3AccessKey, Interval: store.Every12Hours, Enabled: true,
		Bucket: "audit-bucket", Path: "audit/logs", Region: "us-east-1", AccessKeyID: "AKIAIOSFODNN7EXAMPLE",
	}
}

var isValidation = storetest.IsValidation
