package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/sot-dev/sot"
)

const analysisColumns = `a.id, a.branch, a.commit_sha, a.size, a.sha256, a.created_at, a.actor_type, a.actor_id, a.actor_name, a.actor_ip`

const analysisFrom = ` FROM analyses a JOIN projects p ON p.id = a.project_id JOIN orgs o ON o.id = p.org_id`

func analysisNotFound(id int64) error { return sot.Errorf(sot.ENOTFOUND, "analysis %d not found", id) }

func scanAnalysis(s interface{ Scan(...any) error }, org, project string) (*sot.Analysis, error) {
	a := sot.Analysis{Org: org, Project: project}
	var created int64
	var actorType string
	err := s.Scan(&a.ID, &a.Branch, &a.Commit, &a.Size, &a.SHA256, &created, &actorType,
		&a.SubmittedBy.ID, &a.SubmittedBy.Name, &a.SubmittedBy.IP)
	if err != nil {
		return nil, err
	}
	a.CreatedAt = fromUnix(created)
	a.SubmittedBy.Type = sot.ActorType(actorType)
	return &a, nil
}

// CreateAnalysis reads at most limit bytes of report from r and stores it
// with a. The report is read completely before the transaction begins, so
// a slow upload never holds the write lock.
func (db *DB) CreateAnalysis(ctx context.Context, a *sot.Analysis, r io.Reader, limit int64) error {
	h := sha256.New()
	var buf bytes.Buffer
	n, err := io.Copy(io.MultiWriter(&buf, h), io.LimitReader(r, limit+1))
	if err != nil {
		return fail("read report", err)
	}
	if n > limit {
		return sot.Errorf(sot.ETOOLARGE, "report larger than %d bytes", limit)
	}
	if a.SubmittedBy == (sot.Actor{}) {
		a.SubmittedBy = sot.ActorFrom(ctx)
	}
	created := now()
	sum := hex.EncodeToString(h.Sum(nil))
	err = db.write(ctx, func(t *tx) error {
		var pid int64
		err := t.queryRow(ctx, `SELECT p.id FROM projects p JOIN orgs o ON o.id = p.org_id WHERE o.key = ? AND p.key = ?`,
			a.Org, a.Project).Scan(&pid)
		if errors.Is(err, sql.ErrNoRows) {
			return projectNotFound(a.Project)
		}
		if err != nil {
			return err
		}
		s := a.SubmittedBy
		err = t.queryRow(ctx, `INSERT INTO analyses (project_id, branch, commit_sha, size, sha256, created_at, actor_type, actor_id, actor_name, actor_ip)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			pid, a.Branch, a.Commit, n, sum, unix(created), string(s.Type), s.ID, s.Name, s.IP).Scan(&a.ID)
		if err != nil {
			return err
		}
		if _, err := t.exec(ctx, `INSERT INTO analysis_reports (analysis_id, body) VALUES (?, ?)`, a.ID, buf.Bytes()); err != nil {
			return err
		}
		return t.audit(ctx, a.Org, sot.ActionAnalysisSubmitted, fmt.Sprintf("analysis:%d", a.ID),
			map[string]any{"project": a.Project, "branch": a.Branch, "commit": a.Commit, "size": n})
	})
	if err != nil {
		a.ID = 0
		return fail("create analysis", err)
	}
	a.Size, a.SHA256, a.CreatedAt = n, sum, created
	return nil
}

// FindAnalysis returns the analysis id of the project, or ENOTFOUND.
func (db *DB) FindAnalysis(ctx context.Context, org, project string, id int64) (*sot.Analysis, error) {
	a, err := scanAnalysis(db.read().queryRow(ctx, `SELECT `+analysisColumns+analysisFrom+` WHERE o.key = ? AND p.key = ? AND a.id = ?`,
		org, project, id), org, project)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, analysisNotFound(id)
	}
	if err != nil {
		return nil, fail("find analysis", err)
	}
	return a, nil
}

// ListAnalyses lists the analyses of a project, newest first.
func (db *DB) ListAnalyses(ctx context.Context, org, project string, page sot.Page) ([]*sot.Analysis, string, error) {
	c := db.read()
	var pid int64
	err := c.queryRow(ctx, `SELECT p.id FROM projects p JOIN orgs o ON o.id = p.org_id WHERE o.key = ? AND p.key = ?`, org, project).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", projectNotFound(project)
	}
	if err != nil {
		return nil, "", fail("list analyses", err)
	}
	q := `SELECT ` + analysisColumns + ` FROM analyses a WHERE a.project_id = ?`
	args := []any{pid}
	if page.Token != "" {
		before, err := parseIDCursor(page.Token)
		if err != nil {
			return nil, "", err
		}
		q += ` AND a.id < ?`
		args = append(args, before)
	}
	limit := page.Limit()
	rows, err := c.query(ctx, q+` ORDER BY a.id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", fail("list analyses", err)
	}
	defer rows.Close()
	var out []*sot.Analysis
	for rows.Next() {
		a, err := scanAnalysis(rows, org, project)
		if err != nil {
			return nil, "", fail("list analyses", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fail("list analyses", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = idCursor(out[limit-1].ID)
	}
	return out, next, nil
}

// OpenReport returns the report of the analysis id of the project.
func (db *DB) OpenReport(ctx context.Context, org, project string, id int64) (io.ReadCloser, error) {
	var body []byte
	err := db.read().queryRow(ctx, `SELECT r.body FROM analysis_reports r JOIN analyses a ON a.id = r.analysis_id
		JOIN projects p ON p.id = a.project_id JOIN orgs o ON o.id = p.org_id WHERE o.key = ? AND p.key = ? AND a.id = ?`,
		org, project, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, analysisNotFound(id)
	}
	if err != nil {
		return nil, fail("open report", err)
	}
	return io.NopCloser(bytes.NewReader(body)), nil
}
