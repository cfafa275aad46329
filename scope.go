package sot

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"sync/atomic"
)

// Limits of a scope.
const (
	MaxScopeProjects   = 100_000
	MaxScopePatterns   = 50
	MaxScopePatternLen = 200
)

// maxKeyLen is the longest organization or project key.
const maxKeyLen = 400

// ValidKey reports whether s is a valid organization or project key: 1 to
// 400 characters of A-Z, a-z, 0-9, "_", ".", ":" and "-", starting with a
// letter or digit. It is a loop rather than a regular expression because
// a scope of 100,000 keys is validated whenever it is loaded.
func ValidKey(s string) bool {
	if s == "" || len(s) > maxKeyLen || !isBase62(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isBase62(c) && c != '_' && c != '.' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

// Scope says which projects of its organization an organization token
// covers. It is evaluated when a request is checked, never materialized per
// project: AllProjects is a flag, Patterns are compiled once, Projects is a
// set. That is what covers a project created tomorrow with no change to the
// token, and keeps project creation independent of how many tokens exist.
type Scope struct {
	// AllProjects covers every current and future project; it excludes the
	// other two fields.
	AllProjects bool
	// Projects are explicit keys; they must exist when the scope is set.
	Projects []string
	// Patterns are RE2 regular expressions matched against the whole key.
	Patterns []string
}

// Summary returns a short human description ("All projects", "3 patterns",
// "2,500 projects", "1 pattern, 2 projects").
func (s Scope) Summary() string {
	if s.AllProjects {
		return "All projects"
	}
	var parts []string
	if n := len(s.Patterns); n > 0 {
		parts = append(parts, plural(n, "pattern"))
	}
	if n := len(s.Projects); n > 0 {
		parts = append(parts, plural(n, "project"))
	}
	if parts == nil {
		return "No projects"
	}
	return strings.Join(parts, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return groupThousands(n) + " " + word + "s"
}

func groupThousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Validate checks the scope's shape: exactly one mode (all projects, or a
// non-empty list of projects and/or patterns), valid keys, limits, and
// patterns that compile. It does not check that the projects exist; the
// store does, since only it knows. Errors name the offending field
// ("scope.patterns[0]") under the given prefix.
func (s Scope) Validate(prefix string) error {
	var fields []FieldError
	add := func(field, msg string) { fields = append(fields, FieldError{Field: prefix + field, Message: msg}) }
	switch {
	case s.AllProjects && (len(s.Projects) > 0 || len(s.Patterns) > 0):
		add("", "all_projects excludes projects and patterns")
	case !s.AllProjects && len(s.Projects) == 0 && len(s.Patterns) == 0:
		add("", "give all_projects, or at least one project or pattern")
	}
	if len(s.Projects) > MaxScopeProjects {
		add(".projects", fmt.Sprintf("at most %d projects", MaxScopeProjects))
	} else {
		seen := make(map[string]struct{}, len(s.Projects))
		for i, k := range s.Projects {
			if !ValidKey(k) {
				add(fmt.Sprintf(".projects[%d]", i), "invalid project key")
			} else if _, dup := seen[k]; dup {
				add(fmt.Sprintf(".projects[%d]", i), fmt.Sprintf("duplicate project key %q", k))
			}
			seen[k] = struct{}{}
			if len(fields) > 100 {
				break // enough to act on; do not build a 100,000-entry error
			}
		}
	}
	if len(s.Patterns) > MaxScopePatterns {
		add(".patterns", fmt.Sprintf("at most %d patterns", MaxScopePatterns))
	} else {
		for i, p := range s.Patterns {
			if err := checkPattern(p); err != nil {
				add(fmt.Sprintf(".patterns[%d]", i), err.Error())
			}
		}
	}
	if fields != nil {
		return Invalid("invalid scope", fields...)
	}
	return nil
}

func checkPattern(p string) error {
	if p == "" {
		return fmt.Errorf("empty pattern")
	}
	if len(p) > MaxScopePatternLen {
		return fmt.Errorf("pattern longer than %d characters", MaxScopePatternLen)
	}
	if _, err := syntax.Parse(p, syntax.Perl); err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return fmt.Errorf("invalid regular expression: %s", se.Code)
		}
		return fmt.Errorf("invalid regular expression")
	}
	return nil
}

// ScopeMatcher is a compiled Scope: it answers "is this project key
// covered?" without I/O or allocation.
type ScopeMatcher struct {
	all      bool
	re       *regexp.Regexp // all patterns as one anchored alternation; nil if none
	projects map[string]struct{}
	// memo remembers pattern results per key. A matcher is immutable and
	// project keys are few and reused, while a regexp run costs hundreds of
	// nanoseconds: this keeps a check with 50 patterns as cheap as one with
	// an explicit list. It stops growing at maxMemo entries.
	memo  sync.Map // string → bool
	memoN atomic.Int64
}

// maxMemo bounds a matcher's memo (about 1 MiB at 100 bytes an entry).
const maxMemo = 10_000

// Compile validates s and returns its matcher. Patterns are joined into one
// anchored alternation so a key is matched in a single pass.
func (s Scope) Compile() (*ScopeMatcher, error) {
	if err := s.Validate("scope"); err != nil {
		return nil, err
	}
	m := &ScopeMatcher{all: s.AllProjects}
	if len(s.Patterns) > 0 {
		var b strings.Builder
		b.WriteString(`^(?:`)
		for i, p := range s.Patterns {
			if i > 0 {
				b.WriteByte('|')
			}
			b.WriteString(`(?:`)
			b.WriteString(p)
			b.WriteByte(')')
		}
		b.WriteString(`)$`)
		re, err := regexp.Compile(b.String())
		if err != nil {
			return nil, Invalid("invalid scope", FieldError{Field: "scope.patterns", Message: "invalid regular expression"})
		}
		m.re = re
	}
	if len(s.Projects) > 0 {
		m.projects = make(map[string]struct{}, len(s.Projects))
		for _, k := range s.Projects {
			m.projects[k] = struct{}{}
		}
	}
	return m, nil
}

// Match reports whether the project key is in scope.
func (m *ScopeMatcher) Match(key string) bool {
	if m == nil {
		return false
	}
	if m.all {
		return true
	}
	if _, ok := m.projects[key]; ok {
		return true
	}
	if m.re == nil {
		return false
	}
	if v, ok := m.memo.Load(key); ok {
		return v.(bool)
	}
	ok := m.re.MatchString(key)
	if m.memoN.Add(1) <= maxMemo {
		m.memo.Store(key, ok)
	}
	return ok
}

// All reports whether the matcher covers every project.
func (m *ScopeMatcher) All() bool { return m != nil && m.all }
