package sot

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestScopeValidate(t *testing.T) {
	tests := []struct {
		name      string
		scope     Scope
		wantField string // "" means valid
	}{
		{"all projects", Scope{AllProjects: true}, ""},
		{"projects", Scope{Projects: []string{"web", "api"}}, ""},
		{"patterns", Scope{Patterns: []string{"team-a-.*", "svc-[0-9]+"}}, ""},
		{"both lists", Scope{Projects: []string{"web"}, Patterns: []string{"x.*"}}, ""},
		{"empty", Scope{}, "scope"},
		{"all and list", Scope{AllProjects: true, Projects: []string{"web"}}, "scope"},
		{"all and pattern", Scope{AllProjects: true, Patterns: []string{"x"}}, "scope"},
		{"invalid regex", Scope{Patterns: []string{"ok", "team-("}}, "scope.patterns[1]"},
		{"empty pattern", Scope{Patterns: []string{""}}, "scope.patterns[0]"},
		{"long pattern", Scope{Patterns: []string{strings.Repeat("a", 201)}}, "scope.patterns[0]"},
		{"too many patterns", Scope{Patterns: make([]string, 51)}, "scope.patterns"},
		{"bad key", Scope{Projects: []string{"web", "-bad"}}, "scope.projects[1]"},
		{"duplicate key", Scope{Projects: []string{"web", "web"}}, "scope.projects[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.scope.Validate("scope")
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if ErrorCode(err) != EINVALID {
				t.Fatalf("Validate = %v, want EINVALID", err)
			}
			fields := ErrorFields(err)
			if len(fields) == 0 || fields[0].Field != tt.wantField {
				t.Fatalf("fields = %+v, want first field %q", fields, tt.wantField)
			}
		})
	}
}

func TestInvalidRegexMessage(t *testing.T) {
	err := Scope{Patterns: []string{"team-("}}.Validate("scope")
	if got := ErrorFields(err)[0].Message; got != "invalid regular expression: missing closing )" {
		t.Fatalf("message = %q", got)
	}
}

func TestScopeMatch(t *testing.T) {
	tests := []struct {
		name  string
		scope Scope
		in    []string
		out   []string
	}{
		{"all", Scope{AllProjects: true}, []string{"web", "created-tomorrow"}, nil},
		{"explicit", Scope{Projects: []string{"web", "api"}}, []string{"web", "api"}, []string{"we", "webx", "API"}},
		{"pattern is anchored", Scope{Patterns: []string{"team-a-.*"}}, []string{"team-a-", "team-a-web"}, []string{"xteam-a-web", "team-b-web"}},
		{"alternation inside a pattern stays anchored", Scope{Patterns: []string{"a|b"}}, []string{"a", "b"}, []string{"ab", "xa", "bx"}},
		{"several patterns", Scope{Patterns: []string{"svc-[0-9]+", "lib-.*"}}, []string{"svc-1", "lib-x"}, []string{"svc-", "svc-1a"}},
		{"mixed", Scope{Projects: []string{"web"}, Patterns: []string{"api-.*"}}, []string{"web", "api-1"}, []string{"api"}},
		{"case-insensitive flag", Scope{Patterns: []string{"(?i)web"}}, []string{"WEB", "web"}, []string{"webs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.scope.Compile()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tt.in {
				if !m.Match(k) {
					t.Errorf("Match(%q) = false, want true", k)
				}
			}
			for _, k := range tt.out {
				if m.Match(k) {
					t.Errorf("Match(%q) = true, want false", k)
				}
			}
		})
	}
	var nilMatcher *ScopeMatcher
	if nilMatcher.Match("web") {
		t.Error("a nil matcher matched")
	}
}

func TestScopeSummary(t *testing.T) {
	tests := []struct {
		scope Scope
		want  string
	}{
		{Scope{AllProjects: true}, "All projects"},
		{Scope{Patterns: []string{"a", "b", "c"}}, "3 patterns"},
		{Scope{Projects: make([]string, 2500)}, "2,500 projects"},
		{Scope{Projects: []string{"x"}, Patterns: []string{"y"}}, "1 pattern, 1 project"},
		{Scope{}, "No projects"},
	}
	for _, tt := range tests {
		if got := tt.scope.Summary(); got != tt.want {
			t.Errorf("Summary(%+v) = %q, want %q", tt.scope, got, tt.want)
		}
	}
}

func FuzzScopeCompile(f *testing.F) {
	f.Add("team-a-.*", "team-a-web")
	f.Add("svc-[0-9]+", "svc-12")
	f.Add("(", "x")
	f.Add("a|b", "ab")
	f.Fuzz(func(t *testing.T, pattern, key string) {
		m, err := Scope{Patterns: []string{pattern}}.Compile()
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("Compile(%q) error code %q", pattern, ErrorCode(err))
			}
			return
		}
		// A pattern's match must be a whole-key match: the same answer as the
		// pattern explicitly anchored on its own.
		want := false
		if re, err := compileAnchored(pattern); err == nil {
			want = re.MatchString(key)
		}
		if got := m.Match(key); got != want {
			t.Fatalf("Match(%q) with pattern %q = %v, want %v", key, pattern, got, want)
		}
	})
}

func BenchmarkScopeMatch(b *testing.B) {
	patterns := make([]string, 50)
	for i := range patterns {
		patterns[i] = fmt.Sprintf("team-%d-.*", i)
	}
	projects := make([]string, 100_000)
	for i := range projects {
		projects[i] = fmt.Sprintf("project-%06d", i)
	}
	cases := []struct {
		name  string
		scope Scope
		key   string
	}{
		{"all", Scope{AllProjects: true}, "anything"},
		{"explicit/1", Scope{Projects: []string{"project-000001"}}, "project-000001"},
		{"explicit/100000", Scope{Projects: projects}, "project-054321"},
		{"patterns/1", Scope{Patterns: []string{"team-7-.*"}}, "team-7-web"},
		{"patterns/50", Scope{Patterns: patterns}, "team-49-web"},
	}
	for _, c := range cases {
		m, err := c.scope.Compile()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !m.Match(c.key) {
					b.Fatal("no match")
				}
			}
		})
	}
}

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"web", true},
		{"a", true},
		{"9lives", true},
		{"team-a_web.v2:prod", true},
		{strings.Repeat("k", 400), true},
		{strings.Repeat("k", 401), false},
		{"", false},
		{"-web", false},
		{"_web", false},
		{"we b", false},
		{"web/api", false},
		{"wéb", false},
		{"web\n", false},
	} {
		if got := ValidKey(tc.key); got != tc.want {
			t.Errorf("ValidKey(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

// keyGrammar is the definition of a key that ValidKey implements by hand.
var keyGrammar = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,399}$`)

func FuzzValidKey(f *testing.F) {
	for _, s := range []string{"web", "-x", "a:b.c_d-e", strings.Repeat("z", 400), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidKey(s), keyGrammar.MatchString(s); got != want {
			t.Fatalf("ValidKey(%q) = %v, grammar says %v", s, got, want)
		}
	})
}
