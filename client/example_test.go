package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/sot-dev/sot/client"
)

func ExampleNew() {
	c, err := client.New("https://sot.example.com", os.Getenv("SOT_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	me, err := c.Me(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("authenticated as", me.Type)
}

// A pipeline submits its analysis report with an organization token that
// has the scan permission. The report is streamed, never held in memory.
func ExampleClient_Upload() {
	c, err := client.New("https://sot.example.com", os.Getenv("SOT_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	f, err := os.Open("report.json")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	a, err := c.Upload(context.Background(), "acme", "web", f, client.UploadOptions{Branch: "main", Commit: os.Getenv("GIT_COMMIT")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("analysis", a.ID, "sha256", a.SHA256)
}

// Lists are iterators: the next page is fetched only when the loop needs it.
func ExampleClient_Projects() {
	c, err := client.New("https://sot.example.com", os.Getenv("SOT_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	for p, err := range c.Projects(context.Background(), "acme", "team-a") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p.Key, p.Name)
	}
}

// Creating a token returns its secret once; store it in the CI system's
// secret variables right away.
func ExampleClient_CreateToken() {
	c, err := client.New("https://sot.example.com", os.Getenv("SOT_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	nt, err := c.CreateToken(context.Background(), "acme", client.CreateTokenRequest{
		Name:        "gitlab team-a",
		Scope:       client.Scope{Patterns: []string{"team-a-.*"}},
		Permissions: []string{client.PermissionScan, client.PermissionBrowse},
		Expiry:      client.Expiry{In: "90d"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("token", nt.Token.ID, "secret", nt.Secret)
}

// Another service asks whether a caller's credential may act on a project.
func ExampleClient_Check() {
	caller, err := client.New("https://sot.example.com", os.Getenv("CALLER_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	allowed, err := caller.Check(context.Background(), "acme", "web", client.PermissionBrowse)
	switch {
	case client.IsUnauthenticated(err):
		fmt.Println("bad credential")
	case err != nil:
		log.Fatal(err)
	case allowed:
		fmt.Println("allowed")
	default:
		fmt.Println("not allowed")
	}
}

// API errors are *client.Error values with the server's problem details.
func ExampleError() {
	c, err := client.New("https://sot.example.com", os.Getenv("SOT_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.CreateToken(context.Background(), "acme", client.CreateTokenRequest{
		Name:        "bad",
		Scope:       client.Scope{Patterns: []string{"web-(.*"}},
		Permissions: []string{client.PermissionScan},
		Expiry:      client.Expiry{In: "30d"},
	})
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Code(), e.Detail)
		for _, f := range e.Errors {
			fmt.Println(f.Field, f.Message)
		}
	}
}
