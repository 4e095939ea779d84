package framework

import (
	"bufio"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Grades, from CONTRACT.md: the Ginkgo label each spec carries for its
// grade. A spec carries exactly one of them.
const (
	GradeCore     = "core"
	GradeStrict   = "strict"
	GradeRobust   = "robust"
	GradeSecurity = "security"
	GradeInfo     = "info"
)

// Grades lists the grades in profile order.
var Grades = []string{GradeCore, GradeStrict, GradeRobust, GradeSecurity, GradeInfo}

// Transport labels mark specs that exercise one transport; LabelStock marks
// the specs driven by the stock zishang520 client.
const (
	LabelPolling   = "polling"
	LabelWebSocket = "websocket"
	LabelUpgrade   = "upgrade"
	LabelStock     = "stock-client"
)

// Profiles maps each `--profile` to the Ginkgo label filter that selects
// its cases.
var Profiles = map[string]string{
	"core":   GradeCore,
	"strict": GradeCore + " || " + GradeStrict,
	"all":    strings.Join(Grades, " || "),
}

// ProfileNames lists the profiles from narrowest to widest.
var ProfileNames = []string{"core", "strict", "all"}

var caseIDPattern = regexp.MustCompile(`^[A-Z]+-[0-9]+[a-z]?(/[A-Za-z0-9-]+)?$`)

// CaseID returns the case ID a spec name starts with ("JOIN-1 the joiner
// ..." → "JOIN-1"), or "" when it does not start with one.
func CaseID(specText string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(specText), " ")
	if caseIDPattern.MatchString(first) {
		return first
	}
	return ""
}

// CaseTitle returns the spec name without its leading case ID.
func CaseTitle(specText string) string {
	text := strings.TrimSpace(specText)
	if id := CaseID(text); id != "" {
		return strings.TrimSpace(strings.TrimPrefix(text, id))
	}
	return text
}

// Grade returns the grade label among labels, or "" when there is none.
func Grade(labels []string) string {
	for _, g := range Grades {
		if slices.Contains(labels, g) {
			return g
		}
	}
	return ""
}

// Requirement is one requirement of CONTRACT.md.
type Requirement struct {
	// Order is the requirement's position in CONTRACT.md (0 = first).
	Order int
	ID    string
	Grade string // as written: "core, MUST", "strict, SHOULD", "info", "open"
	Text  string
}

var (
	contractMu sync.RWMutex
	contract   map[string]Requirement
)

var reqLine = regexp.MustCompile(`^- \*\*([A-Z]+-[0-9]+)\*\* \(([^)]*)\):\s*(.*)$`)

// ParseContract reads the requirements of CONTRACT.md: bullets of the form
// "- **ID** (grade, WORD): text", with continuation lines indented.
func ParseContract(md string) (map[string]Requirement, error) {
	out := map[string]Requirement{}
	var cur *Requirement
	flush := func() {
		if cur != nil {
			cur.Order = len(out)
			cur.Text = strings.Join(strings.Fields(cur.Text), " ")
			out[cur.ID] = *cur
			cur = nil
		}
	}
	sc := bufio.NewScanner(strings.NewReader(md))
	for sc.Scan() {
		line := sc.Text()
		if m := reqLine.FindStringSubmatch(line); m != nil {
			flush()
			cur = &Requirement{Order: len(out), ID: m[1], Grade: m[2], Text: m[3]}
			continue
		}
		if cur != nil && strings.HasPrefix(line, "  ") && strings.TrimSpace(line) != "" {
			cur.Text += " " + strings.TrimSpace(line)
			continue
		}
		flush()
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no requirements found (want lines like \"- **JOIN-1** (core, MUST): ...\")")
	}
	return out, nil
}

// SetContract installs the parsed contract used to quote requirement texts
// in failure reports.
func SetContract(reqs map[string]Requirement) {
	contractMu.Lock()
	defer contractMu.Unlock()
	contract = reqs
}

// Contract returns the requirement with this ID. A case ID with a suffix
// ("TRANS-1/JOIN-1") or a prefix group ("STOCK-1") returns what it can.
func Contract(id string) (Requirement, bool) {
	contractMu.RLock()
	defer contractMu.RUnlock()
	base, _, _ := strings.Cut(id, "/")
	r, ok := contract[base]
	return r, ok
}

// CaseOrder sorts case IDs in the order their requirements appear in
// CONTRACT.md; IDs that are not requirements (STOCK-1) come last, by name.
func CaseOrder(a, b string) int {
	ra, oka := Contract(a)
	rb, okb := Contract(b)
	switch {
	case oka && okb:
		return ra.Order - rb.Order
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}
