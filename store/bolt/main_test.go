package bolt_test

import (
	"os"
	"testing"

	"github.com/auditexport/auditexport/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.RemoveFixtures()
	os.Exit(code)
}
