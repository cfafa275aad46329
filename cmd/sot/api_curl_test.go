package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestAPIReadsCurlBodiesAsJSON pastes the README's walkthrough form: curl -d
// sends application/x-www-form-urlencoded unless told otherwise, and the
// API reads such a body as JSON rather than refusing it.
func TestAPIReadsCurlBodiesAsJSON(t *testing.T) {
	s := startServer(t, serverOpts{})
	tests := []struct {
		name        string
		contentType string
		body        string
		want        int
	}{
		{"curl default", "application/x-www-form-urlencoded", `{"key":"acme","name":"Acme","plan":"team"}`, http.StatusCreated},
		{"json", "application/json", `{"key":"globex","name":"Globex","plan":"team"}`, http.StatusCreated},
		{"curl default, bad JSON", "application/x-www-form-urlencoded", `key=initech`, http.StatusBadRequest},
		{"unsupported type", "application/xml", `<org/>`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", s.URL+"/api/v1/orgs", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+s.AdminToken)
			req.Header.Set("Content-Type", tt.contentType)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
