package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// realReports runs verify (in a process of its own: the specs run once per
// process) and load (in-process) against the embedded reference with
// --report-dir, and returns the two report directories. The verify run is
// focused on a few cases of several grades, info included, to stay short.
func realReports(t *testing.T) (verifyDir, loadDir string) {
	t.Helper()
	bin := buildChatspec(t)
	verifyDir, loadDir = t.TempDir(), t.TempDir()
	cmd := exec.Command(bin, "verify", "--profile", "all", "--focus", "CONN-1|JOIN-1|TRANS-4|SEC-2", "--report-dir", verifyDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if code := exitCode(t, cmd.Run()); code != ExitOK {
		t.Fatalf("verify: exit %d\n%s", code, out.String())
	}
	args := append([]string{}, quickLoad...)
	args = append(args, "--report-dir", loadDir, "--threshold", "fanout.p99<5s", "--threshold", "delivery.lost==0")
	if code, stdout, stderr := runLoadCmd(context.Background(), t, args...); code != ExitOK {
		t.Fatalf("load: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	return verifyDir, loadDir
}

// compileSchema compiles one of reports/schema/*.schema.json, asserting
// "format" (date-time) as well.
func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	path := filepath.Join("..", "..", "reports", "schema", name)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(name, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(name)
	if err != nil {
		t.Fatalf("compiling %s: %v", path, err)
	}
	return s
}

func validateFile(t *testing.T, s *jsonschema.Schema, path string) error {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not JSON: %v", path, err)
	}
	return s.Validate(inst)
}

func TestReportsMatchTheirSchemas(t *testing.T) {
	results := compileSchema(t, "results.schema.json")
	summary := compileSchema(t, "summary.schema.json")
	verifyDir, loadDir := realReports(t)
	if err := validateFile(t, results, filepath.Join(verifyDir, "results.json")); err != nil {
		t.Errorf("results.json of a real run does not match results.schema.json:\n%v", err)
	}
	if err := validateFile(t, summary, filepath.Join(loadDir, "summary.json")); err != nil {
		t.Errorf("summary.json of a real run does not match summary.schema.json:\n%v", err)
	}
	// The golden files of the renderers' tests hold every optional field.
	for _, g := range []struct {
		s    *jsonschema.Schema
		file string
	}{{results, "verify_results.json.golden"}, {summary, "load_summary.json.golden"}} {
		if err := validateFile(t, g.s, filepath.Join("..", "..", "reports", "testdata", g.file)); err != nil {
			t.Errorf("%s does not match its schema:\n%v", g.file, err)
		}
	}
}

// TestSchemasRejectWhatTheyMust proves the schemas can fail: a report
// without its schema_version, with a wrong type, or with a verdict outside
// its enum is refused.
func TestSchemasRejectWhatTheyMust(t *testing.T) {
	results := compileSchema(t, "results.schema.json")
	summary := compileSchema(t, "summary.schema.json")
	golden := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "reports", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tt := range []struct {
		name   string
		s      *jsonschema.Schema
		doc    string
		old    string
		broken string
	}{
		{"results without schema_version", results, golden("verify_results.json.golden"), `"schema_version": 1,`, ``},
		{"results with a string count", results, golden("verify_results.json.golden"), `"passed": false`, `"passed": "no"`},
		{"results with an unknown outcome", results, golden("verify_results.json.golden"), `"outcome": "passed"`, `"outcome": "ok"`},
		{"summary with another schema_version", summary, golden("load_summary.json.golden"), `"schema_version": 1,`, `"schema_version": 2,`},
		{"summary with an unknown verdict", summary, golden("load_summary.json.golden"), `"verdict": "`, `"verdict": "maybe`},
		{"summary with a negative count", summary, golden("load_summary.json.golden"), `"sent": `, `"sent": -`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(tt.doc, tt.old) {
				t.Fatalf("the golden file has no %q", tt.old)
			}
			doc := strings.Replace(tt.doc, tt.old, tt.broken, 1)
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
			if err != nil {
				t.Fatalf("broken document is not JSON: %v", err)
			}
			if err := tt.s.Validate(inst); err == nil {
				t.Errorf("the schema accepted it")
			}
		})
	}
}
