package sot

import (
	"encoding/json"
	"testing"
)

func TestPermissionSetJSON(t *testing.T) {
	var s PermissionSet
	if err := json.Unmarshal([]byte(`["browse","scan"]`), &s); err != nil {
		t.Fatal(err)
	}
	if !s.Has(PermissionScan) || !s.Has(PermissionBrowse) || s.Has(PermissionProvision) {
		t.Fatalf("set = %v", s)
	}
	b, _ := json.Marshal(s)
	if string(b) != `["scan","browse"]` {
		t.Fatalf("marshal = %s", b)
	}
	tests := []struct {
		name, in, field string
	}{
		{"unknown", `["scan","deploy"]`, "permissions[1]"},
		{"not grantable", `["org_admin"]`, "permissions[0]"},
		{"empty", `[]`, "permissions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := json.Unmarshal([]byte(tt.in), &s)
			if f := ErrorFields(err); len(f) == 0 || f[0].Field != tt.field {
				t.Fatalf("Unmarshal(%s) = %v, want field %s", tt.in, err, tt.field)
			}
		})
	}
}
