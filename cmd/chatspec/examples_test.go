package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The examples of sharded runs, checked offline. `kubectl apply
// --dry-run=client` cannot check the Kubernetes one here: even a client
// dry run asks the API server which resource types exist (discovery), and
// tests run without a cluster. So each document is decoded strictly into
// the Kubernetes API types (an unknown or misspelt field fails), and the
// shard and merge arguments are expanded as the kubelet would and parsed
// by chatspec's own flag parser.

const (
	k8sExample        = "../../examples/kubernetes/chatspec-load-shards.yaml"
	k8sDockerfile     = "../../examples/kubernetes/Dockerfile"
	workflowExample   = "../../examples/github-actions/sharded-load.yml"
	testRunSecret     = "0123456789abcdef0123456789abcdef"
	completionIndexFP = "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']"
)

// k8sObjects are the documents of the Kubernetes example, by kind and name.
type k8sObjects struct {
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
	pvcs       map[string]*corev1.PersistentVolumeClaim
	jobs       []*batchv1.Job
}

var templateVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// renderK8sExample does the header's envsubst step with test values.
func renderK8sExample(t *testing.T, text string, vars map[string]string) string {
	t.Helper()
	used := map[string]bool{}
	for _, m := range templateVar.FindAllStringSubmatch(text, -1) {
		if _, ok := vars[m[1]]; !ok {
			t.Errorf("%s uses ${%s}, which the test (and the header's envsubst list) does not set", k8sExample, m[1])
		}
		used[m[1]] = true
	}
	for name := range vars {
		if !used[name] {
			t.Errorf("%s no longer uses ${%s}: update the test and the header", k8sExample, name)
		}
	}
	return templateVar.ReplaceAllStringFunc(text, func(s string) string {
		return vars[templateVar.FindStringSubmatch(s)[1]]
	})
}

// decodeK8sObjects decodes every document strictly into its API type.
func decodeK8sObjects(t *testing.T, text string) *k8sObjects {
	t.Helper()
	objs := &k8sObjects{secrets: map[string]*corev1.Secret{}, configMaps: map[string]*corev1.ConfigMap{}, pvcs: map[string]*corev1.PersistentVolumeClaim{}}
	for n, doc := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(text, -1) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v", n, err)
		}
		if tm.APIVersion == "" && tm.Kind == "" && strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
			continue // only comments
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Secret":
			obj = &corev1.Secret{}
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 PersistentVolumeClaim":
			obj = &corev1.PersistentVolumeClaim{}
		case "batch/v1 Job":
			obj = &batchv1.Job{}
		default:
			t.Fatalf("document %d: apiVersion %q kind %q: not a type this test knows", n, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("document %d (%s): %v", n, tm.Kind, err)
		}
		var name string
		switch o := obj.(type) {
		case *corev1.Secret:
			name, objs.secrets[o.Name] = o.Name, o
		case *corev1.ConfigMap:
			name, objs.configMaps[o.Name] = o.Name, o
		case *corev1.PersistentVolumeClaim:
			name, objs.pvcs[o.Name] = o.Name, o
		case *batchv1.Job:
			name, objs.jobs = o.Name, append(objs.jobs, o)
		}
		if name == "" {
			t.Fatalf("document %d (%s): no metadata.name", n, tm.Kind)
		}
	}
	return objs
}

// containerEnv resolves a container's env as the kubelet would for the pod
// of completion index (index < 0: not an Indexed Job's pod), from the
// objects of the same file.
func (o *k8sObjects) containerEnv(t *testing.T, c *corev1.Container, index int) map[string]string {
	t.Helper()
	if len(c.EnvFrom) > 0 {
		t.Errorf("container %s: envFrom is not resolved by this test; use env", c.Name)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch vf := e.ValueFrom; {
		case vf == nil:
			env[e.Name] = e.Value
		case vf.FieldRef != nil && vf.FieldRef.FieldPath == completionIndexFP && index >= 0:
			env[e.Name] = strconv.Itoa(index)
		case vf.ConfigMapKeyRef != nil:
			cm := o.configMaps[vf.ConfigMapKeyRef.Name]
			v, ok := "", false
			if cm != nil {
				v, ok = cm.Data[vf.ConfigMapKeyRef.Key]
			}
			if !ok {
				t.Errorf("container %s: env %s: no ConfigMap %s with key %s in the file", c.Name, e.Name, vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key)
			}
			env[e.Name] = v
		case vf.SecretKeyRef != nil:
			s := o.secrets[vf.SecretKeyRef.Name]
			v, ok := "", false
			if s != nil {
				if v, ok = s.StringData[vf.SecretKeyRef.Key]; !ok {
					var b []byte
					b, ok = s.Data[vf.SecretKeyRef.Key]
					v = string(b)
				}
			}
			if !ok {
				t.Errorf("container %s: env %s: no Secret %s with key %s in the file", c.Name, e.Name, vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
			}
			env[e.Name] = v
		default:
			t.Errorf("container %s: env %s: a valueFrom this test does not resolve", c.Name, e.Name)
		}
	}
	return env
}

// expandK8s expands $(VAR) as the kubelet does in command and args: a
// defined variable is replaced, $$ is a literal $, and an undefined
// reference stays as written (returned in unresolved).
func expandK8s(s string, env map[string]string) (out string, unresolved []string) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String(), append(unresolved, s[i:])
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
				unresolved = append(unresolved, name)
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), unresolved
}

func expandArgs(t *testing.T, c *corev1.Container, env map[string]string) []string {
	t.Helper()
	var out []string
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		x, unresolved := expandK8s(a, env)
		if len(unresolved) > 0 {
			t.Errorf("container %s: %q: $(%s) is not in the container's env, so the kubelet leaves it as written", c.Name, a, strings.Join(unresolved, "), $("))
		}
		out = append(out, x)
	}
	return out
}

// k8sVars are the header's per-run values, as a test would render them.
func k8sVars() map[string]string {
	return map[string]string{
		"RUN_ID":              "r202612071600",
		"START_AT":            time.Now().Add(90 * time.Second).UTC().Format(time.RFC3339),
		"CHATSPEC_RUN_SECRET": testRunSecret,
	}
}

func readExample(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shardsAndMerge finds the Indexed Job of the shards and the Job that runs
// chatspec merge.
func shardsAndMerge(t *testing.T, objs *k8sObjects) (shards, merge *batchv1.Job) {
	t.Helper()
	for _, j := range objs.jobs {
		if len(j.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("Job %s: %d containers, want 1", j.Name, len(j.Spec.Template.Spec.Containers))
		}
		c := j.Spec.Template.Spec.Containers[0]
		switch {
		case len(c.Args) > 0 && c.Args[0] == "load":
			if shards != nil {
				t.Fatalf("two Jobs run chatspec load: %s and %s", shards.Name, j.Name)
			}
			shards = j
		case len(c.Args) > 0 && c.Args[0] == "merge":
			if merge != nil {
				t.Fatalf("two Jobs run chatspec merge: %s and %s", merge.Name, j.Name)
			}
			merge = j
		default:
			t.Fatalf("Job %s: args %q run neither chatspec load nor merge", j.Name, c.Args)
		}
	}
	if shards == nil || merge == nil {
		t.Fatalf("want a Job running chatspec load and one running chatspec merge; have %d Jobs", len(objs.jobs))
	}
	return shards, merge
}

// checkReportVolume checks that dir lies on a mount of a ReadWriteMany PVC
// of the file, and returns the claim's name.
func checkReportVolume(t *testing.T, objs *k8sObjects, pod *corev1.PodSpec, c *corev1.Container, dir string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if dir != m.MountPath && !strings.HasPrefix(dir, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		if m.ReadOnly || m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("container %s: %s: mount %s is read-only or a subPath", c.Name, dir, m.MountPath)
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.PersistentVolumeClaim == nil {
				t.Fatalf("container %s: %s is on volume %s, which is not a PersistentVolumeClaim", c.Name, dir, v.Name)
			}
			pvc := objs.pvcs[v.PersistentVolumeClaim.ClaimName]
			if pvc == nil {
				t.Fatalf("volume %s: no PersistentVolumeClaim %s in the file", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
			if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
				t.Errorf("PersistentVolumeClaim %s: access modes %v: pods on several nodes share it, want ReadWriteMany", pvc.Name, pvc.Spec.AccessModes)
			}
			return pvc.Name
		}
		t.Fatalf("container %s: mount %s names no volume of the pod", c.Name, m.Name)
	}
	t.Fatalf("container %s: %s is on no volume mount: it would vanish with the pod", c.Name, dir)
	return ""
}

func TestKubernetesShardsExample(t *testing.T) {
	vars := k8sVars()
	objs := decodeK8sObjects(t, renderK8sExample(t, readExample(t, k8sExample), vars))
	shards, merge := shardsAndMerge(t, objs)

	spec := shards.Spec
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		t.Fatalf("Job %s: completionMode %v, want Indexed", shards.Name, spec.CompletionMode)
	}
	if spec.Completions == nil || spec.Parallelism == nil || *spec.Completions != *spec.Parallelism || *spec.Completions < 1 {
		t.Fatalf("Job %s: completions %s, parallelism %s: want them equal (every shard runs at once)", shards.Name, ptrString(spec.Completions), ptrString(spec.Parallelism))
	}
	n := int(*spec.Completions)
	if spec.BackoffLimit == nil || *spec.BackoffLimit != 0 {
		t.Errorf("Job %s: backoffLimit %s, want 0: a shard retried after --start-at runs late", shards.Name, ptrString(spec.BackoffLimit))
	}
	pod := &spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("Job %s: restartPolicy %q, want Never", shards.Name, pod.RestartPolicy)
	}
	c := &pod.Containers[0]
	declared := false
	for _, e := range c.Env {
		switch e.Name {
		case "JOB_COMPLETION_INDEX":
			declared = e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == completionIndexFP
		case runSecretEnv:
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("container %s: %s must come from a Secret (secretKeyRef)", c.Name, runSecretEnv)
			}
		}
	}
	if !declared {
		t.Errorf("container %s: want JOB_COMPLETION_INDEX declared from fieldRef %s", c.Name, completionIndexFP)
	}
	if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
		t.Errorf("container %s: no memory request", c.Name)
	}
	if lim, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || lim.Cmp(c.Resources.Requests[corev1.ResourceMemory]) < 0 {
		t.Errorf("container %s: memory limit %v below the request or missing", c.Name, c.Resources.Limits.Memory())
	}
	if df := readExample(t, k8sDockerfile); len(c.Command) != 1 || !strings.Contains(df, c.Command[0]) {
		t.Errorf("container %s: command %q: want the one binary that %s installs", c.Name, c.Command, k8sDockerfile)
	}

	var shardDirs []string
	var claim string
	for i := range n {
		env := objs.containerEnv(t, c, i)
		args := expandArgs(t, c, env)
		t.Setenv(runSecretEnv, env[runSecretEnv])
		l, err := parseLoadFlags(args[2:], io.Discard) // after the binary and "load"
		if err != nil {
			t.Fatalf("index %d: chatspec %s: %v", i, strings.Join(args[1:], " "), err)
		}
		if l.shard.Index != i || l.shard.Count != n {
			t.Fatalf("index %d: --shard %s, want %d/%d (completions %d)", i, l.shard, i, n, n)
		}
		if l.runID != vars["RUN_ID"] || !l.start.Equal(mustTime(t, vars["START_AT"])) || len(l.target.Targets) == 0 {
			t.Errorf("index %d: run ID %q, start %v, targets %v: not the ConfigMap's", i, l.runID, l.start, l.target.Targets)
		}
		if slices.Contains(shardDirs, l.reportDir) {
			t.Fatalf("index %d: --report-dir %s is another shard's too", i, l.reportDir)
		}
		shardDirs = append(shardDirs, l.reportDir)
		claim = checkReportVolume(t, objs, pod, c, l.reportDir)
	}

	// An unrendered copy must not run: the placeholders fail the parse.
	raw := decodeK8sObjects(t, readExample(t, k8sExample))
	rawShards, _ := shardsAndMerge(t, raw)
	rc := &rawShards.Spec.Template.Spec.Containers[0]
	env := raw.containerEnv(t, rc, 0)
	t.Setenv(runSecretEnv, testRunSecret)
	if _, err := parseLoadFlags(expandArgs(t, rc, env)[2:], io.Discard); err == nil {
		t.Errorf("the unrendered file's shard arguments parse: its ${...} placeholders should make them fail")
	}

	// The merge names every shard directory, once, on the same volume, and
	// waits for every one.
	mpod := &merge.Spec.Template.Spec
	mc := &mpod.Containers[0]
	margs := expandArgs(t, mc, objs.containerEnv(t, mc, -1))
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	reportDir := fs.String("report-dir", "", "")
	fs.Func("threshold", "", func(string) error { return nil })
	if err := fs.Parse(margs[2:]); err != nil {
		t.Fatalf("merge args %q: %v", margs, err)
	}
	if !sameSet(fs.Args(), shardDirs) {
		t.Errorf("merge Job %s: shard dirs %q, want every shard's %q", merge.Name, fs.Args(), shardDirs)
	}
	if *reportDir == "" || slices.Contains(shardDirs, *reportDir) {
		t.Errorf("merge Job %s: --report-dir %q: want its own directory", merge.Name, *reportDir)
	}
	if mclaim := checkReportVolume(t, objs, mpod, mc, *reportDir); mclaim != claim {
		t.Errorf("merge Job %s: on claim %s, the shards on %s", merge.Name, mclaim, claim)
	}
	if merge.Spec.BackoffLimit == nil || *merge.Spec.BackoffLimit != 0 || mpod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("merge Job %s: want backoffLimit 0 and restartPolicy Never (its exit code is the verdict)", merge.Name)
	}
	if len(mpod.InitContainers) != 1 {
		t.Fatalf("merge Job %s: want one init container waiting for the shards", merge.Name)
	}
	ic := &mpod.InitContainers[0]
	iargs := expandArgs(t, ic, objs.containerEnv(t, ic, -1))
	// sh -c SCRIPT $0 DIR...: the directories waited for.
	if len(iargs) < 4 || !sameSet(iargs[4:], shardDirs) {
		t.Errorf("merge Job %s: init container waits for %q, want every shard's %q", merge.Name, iargs[min(4, len(iargs)):], shardDirs)
	}
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestKubernetesExampleIsStrict(t *testing.T) {
	// The strict decoding this file's test relies on does reject a field
	// the API does not have (a typo would otherwise be dropped silently).
	doc := "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec:\n  completion: 4\n"
	if err := yaml.UnmarshalStrict([]byte(doc), &batchv1.Job{}); err == nil {
		t.Fatal("UnmarshalStrict accepted spec.completion")
	}
}

func TestKubernetesExpandArgs(t *testing.T) {
	env := map[string]string{"A": "1", "B": "x"}
	for in, want := range map[string]string{
		"--shard=$(A)/4": "--shard=1/4", "$(A)$(B)": "1x", "$$(A)": "$(A)", "$(C)": "$(C)", "a$b": "a$b", "$": "$", "$(A": "$(A",
	} {
		if got, _ := expandK8s(in, env); got != want {
			t.Errorf("expandK8s(%q) = %q, want %q", in, got, want)
		}
	}
}

// workflow is the part of a GitHub Actions workflow the test reads.
type workflow struct {
	On   map[string]any `yaml:"on"`
	Jobs map[string]struct {
		Needs    any `yaml:"needs"`
		Strategy struct {
			Matrix map[string]any `yaml:"matrix"`
		} `yaml:"strategy"`
		Steps []struct {
			Run  string         `yaml:"run"`
			Uses string         `yaml:"uses"`
			With map[string]any `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func TestWorkflowShardsExample(t *testing.T) {
	var wf workflow
	if err := yamlv3.Unmarshal([]byte(readExample(t, workflowExample)), &wf); err != nil {
		t.Fatal(err)
	}
	if _, ok := wf.On["workflow_dispatch"]; !ok {
		t.Errorf("on: %v, want workflow_dispatch", wf.On)
	}
	shardRe := regexp.MustCompile(`--shard \$\{\{ matrix\.shard \}\}/(\d+)`)
	var n int
	var shardJob string
	for name, j := range wf.Jobs {
		for _, s := range j.Steps {
			if m := shardRe.FindStringSubmatch(s.Run); m != nil {
				if shardJob != "" {
					t.Fatalf("jobs %s and %s both run shards", shardJob, name)
				}
				shardJob, n = name, mustAtoi(t, m[1])
			}
		}
	}
	if shardJob == "" {
		t.Fatal("no step runs chatspec load --shard ${{ matrix.shard }}/N")
	}
	list, _ := wf.Jobs[shardJob].Strategy.Matrix["shard"].([]any)
	var got []string
	for _, v := range list {
		got = append(got, fmt.Sprint(v))
	}
	var want, wantDirs []string
	for i := range n {
		want = append(want, strconv.Itoa(i))
		wantDirs = append(wantDirs, fmt.Sprintf("reports/shard-%d", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("job %s: matrix shard %v, want %v for --shard .../%d", shardJob, got, want, n)
	}

	mergeRe := regexp.MustCompile(`chatspec merge((?:\s+\\?\s*\S+)+)`)
	merged := false
	for name, j := range wf.Jobs {
		for _, s := range j.Steps {
			m := mergeRe.FindStringSubmatch(s.Run)
			if m == nil {
				continue
			}
			merged = true
			needs := fmt.Sprint(j.Needs)
			if !strings.Contains(needs, shardJob) {
				t.Errorf("job %s merges but needs %s, not %s", name, needs, shardJob)
			}
			var dirs []string
			fields := strings.Fields(strings.ReplaceAll(m[1], "\\", " "))
			for k := 0; k < len(fields); k++ {
				switch f := fields[k]; {
				case f == "--report-dir" || f == "--threshold":
					k++
				case strings.HasPrefix(f, "-"):
				default:
					dirs = append(dirs, f)
				}
			}
			if !sameSet(dirs, wantDirs) {
				t.Errorf("job %s: merges %q, want %q", name, dirs, wantDirs)
			}
		}
	}
	if !merged {
		t.Error("no job runs chatspec merge")
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
