package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sot-dev/sot/client"
)

type scanCmd struct {
	Org     string `arg:"" help:"Organization key."`
	Project string `arg:"" help:"Project key."`
	File    string `arg:"" type:"path" help:"Analysis report to upload (- for standard input)."`
	Branch  string `help:"Branch the analysis is of."`
	Commit  string `placeholder:"SHA" help:"Commit the analysis is of."`
}

func (c *scanCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	var r io.Reader = std.in
	var size int64
	if c.File != "-" {
		f, err := os.Open(c.File)
		if err != nil {
			return fmt.Errorf("opening the report: %w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("opening the report: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return usageErrorf("%s is not a regular file", c.File)
		}
		r, size = f, fi.Size()
	}
	if errf, ok := std.err.(*os.File); ok && isTerminal(errf) {
		p := startProgress(errf, c.File, size)
		defer p.stop()
		r = p.reader(r)
	}
	a, err := api.Upload(ctx, c.Org, c.Project, r, client.UploadOptions{Branch: c.Branch, Commit: c.Commit, Size: size})
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(std.out, a)
	}
	fmt.Fprintf(std.out, "uploaded analysis %d of %s/%s: %s, sha256 %s\n", a.ID, c.Org, a.Project, humanBytes(a.Size), a.SHA256)
	return nil
}

// progress rewrites one status line on a terminal while an upload runs.
type progress struct {
	w     io.Writer
	name  string
	total int64
	n     atomic.Int64
	done  chan struct{}
	wg    sync.WaitGroup
}

func startProgress(w io.Writer, name string, total int64) *progress {
	p := &progress{w: w, name: name, total: total, done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				p.print()
			case <-p.done:
				p.print()
				fmt.Fprintln(p.w)
				return
			}
		}
	}()
	return p
}

func (p *progress) print() {
	n := p.n.Load()
	if p.total > 0 {
		fmt.Fprintf(p.w, "\ruploading %s: %s / %s (%d%%)\x1b[K", p.name, humanBytes(n), humanBytes(p.total), n*100/p.total)
		return
	}
	fmt.Fprintf(p.w, "\ruploading %s: %s\x1b[K", p.name, humanBytes(n))
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

func (p *progress) reader(r io.Reader) io.Reader { return &countingReader{r: r, n: &p.n} }

// countingReader counts the bytes read through it. It keeps no WriterTo, so
// the HTTP client reads through the count.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// humanBytes formats a size in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

type checkCmd struct {
	Org        string `arg:"" help:"Organization key."`
	Project    string `arg:"" help:"Project key."`
	Permission string `enum:"scan,browse,provision,self_rotate" default:"scan" help:"Permission to check: scan, browse, provision or self_rotate."`
}

func (c *checkCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	err = api.Authorize(ctx, c.Org, c.Project, c.Permission)
	if err != nil && !client.IsForbidden(err) {
		return err
	}
	allowed := err == nil
	if g.json() {
		if werr := writeJSON(std.out, map[string]bool{"allowed": allowed}); werr != nil {
			return werr
		}
	} else if allowed {
		fmt.Fprintf(std.out, "allowed: %s on %s/%s\n", c.Permission, c.Org, c.Project)
	}
	// Not allowed is exit status 4, like any 403, with the server's reason.
	return err
}

type auditCmd struct {
	Org    string `arg:"" help:"Organization key."`
	Action string `placeholder:"ACTION" help:"Only events with this action, such as token.created or auth.failed."`
	Limit  int    `default:"100" help:"Show at most this many events, newest first (0 for all)."`
}

func (c *auditCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	if c.Limit < 0 {
		return usageErrorf("--limit must not be negative")
	}
	api, err := g.client()
	if err != nil {
		return err
	}
	var events []client.AuditEvent
	var t *table
	if !g.json() {
		t = newTable(std.out, "AT", "ACTOR", "ACTION", "TARGET", "IP")
	}
	n := 0
	for e, err := range api.Audit(ctx, c.Org, c.Action) {
		if err != nil {
			if t != nil {
				t.flush()
			}
			return err
		}
		if t != nil {
			t.row(e.At.UTC().Format(time.RFC3339), e.Actor.Type+":"+e.Actor.Name, e.Action, e.Target, e.IP)
		} else {
			events = append(events, e)
		}
		if n++; c.Limit > 0 && n >= c.Limit {
			break
		}
	}
	if t != nil {
		return t.flush()
	}
	return writeJSON(std.out, nonNil(events))
}
