package graph

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates the gqlgen code in a copy of the module and fails if
// anything differs from what is committed: a schema edited without `make generate`.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("regeneration takes several seconds")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	copyDir := t.TempDir()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "data" || d.Name() == "bin" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(copyDir, rel), 0o755)
		}
		if !strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".graphqls") && !strings.HasSuffix(path, ".yml") &&
			d.Name() != "go.mod" && d.Name() != "go.sum" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(copyDir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "gqlgen", "generate", "--config", "gqlgen.yml")
	cmd.Dir = copyDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gqlgen generate: %v\n%s", err, out)
	}
	for _, file := range []string{"graph/generated/generated.go", "graph/model/models_gen.go", "graph/schema.resolvers.go"} {
		committed, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		regenerated, err := os.ReadFile(filepath.Join(copyDir, file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(committed, regenerated) {
			t.Errorf("%s differs from what gqlgen generates: run `make generate` and commit", file)
		}
	}
}
