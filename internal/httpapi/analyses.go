package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/sot-dev/sot"
)

// uploadInput has no Body field, so huma leaves the request body alone and
// the report streams from the connection into storage.
type uploadInput struct {
	Org     string `path:"org"`
	Project string `path:"project"`
	Branch  string `query:"branch" maxLength:"255"`
	Commit  string `query:"commit" maxLength:"255"`

	body          io.Reader
	contentLength int64
}

// reportReadTimeout bounds the upload of one report, so a client that
// stops sending does not hold a connection for ever (the server has no
// overall read timeout, since reports are large).
const reportReadTimeout = 15 * time.Minute

// Resolve captures the request body for the handler.
func (in *uploadInput) Resolve(ctx huma.Context) []error {
	// An error only means the writer takes no deadlines: the upload then
	// runs under the server's own timeouts.
	_ = ctx.SetReadDeadline(time.Now().Add(reportReadTimeout))
	// The server's WriteTimeout runs from the end of the headers: the
	// answer to a long upload needs as long.
	extendWriteDeadline(ctx, reportReadTimeout+time.Minute)
	in.body = &clientBody{r: ctx.BodyReader()}
	in.contentLength = -1
	if v := ctx.Header("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			in.contentLength = n
		}
	}
	return nil
}

type analysisListInput struct {
	Org     string `path:"org"`
	Project string `path:"project"`
	PageParams
}

type analysisInput struct {
	Org     string `path:"org"`
	Project string `path:"project"`
	ID      int64  `path:"id"`
}

func (a *API) registerAnalyses() {
	up := operation(http.MethodPost, "/api/v1/orgs/{org}/projects/{project}/analyses", "submit-analysis", "Scans",
		"Submit an analysis report (any bytes)", http.StatusCreated)
	up.RequestBody = &huma.RequestBody{
		Required:    true,
		Description: "The analysis report, of any content type, up to the server's limit (64 MiB by default).",
		Content: map[string]*huma.MediaType{
			"application/octet-stream": {Schema: &huma.Schema{Type: "string", Format: "binary"}},
		},
	}
	up.Errors = append(up.Errors, http.StatusRequestEntityTooLarge)
	huma.Register(a.huma, up, func(ctx context.Context, in *uploadInput) (*bodyOutput[analysisJSON], error) {
		p := principal(ctx)
		if err := p.Authorize(sot.PermissionScan, in.Org, in.Project); err != nil {
			return nil, err
		}
		if in.contentLength > a.cfg.MaxReportBytes {
			return nil, a.errTooLarge()
		}
		if _, err := a.cfg.Projects.FindProject(ctx, in.Org, in.Project); err != nil {
			return nil, err
		}
		an := &sot.Analysis{Org: in.Org, Project: in.Project, Branch: in.Branch, Commit: in.Commit, SubmittedBy: sot.ActorFrom(ctx)}
		if err := a.cfg.Analyses.CreateAnalysis(ctx, an, in.body, a.cfg.MaxReportBytes); err != nil {
			return nil, err
		}
		return &bodyOutput[analysisJSON]{Body: toAnalysis(an)}, nil
	})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/projects/{project}/analyses", "list-analyses", "Scans", "List a project's analyses, newest first", http.StatusOK),
		func(ctx context.Context, in *analysisListInput) (*listOutput[analysisJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionBrowse, in.Org, in.Project); err != nil {
				return nil, err
			}
			if _, err := a.cfg.Projects.FindProject(ctx, in.Org, in.Project); err != nil {
				return nil, err
			}
			as, next, err := a.cfg.Analyses.ListAnalyses(ctx, in.Org, in.Project, in.page())
			if err != nil {
				return nil, err
			}
			return listOf(as, next, toAnalysis), nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/projects/{project}/analyses/{id}", "get-analysis", "Scans", "Get an analysis", http.StatusOK),
		func(ctx context.Context, in *analysisInput) (*bodyOutput[analysisJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionBrowse, in.Org, in.Project); err != nil {
				return nil, err
			}
			an, err := a.cfg.Analyses.FindAnalysis(ctx, in.Org, in.Project, in.ID)
			if err != nil {
				return nil, err
			}
			return &bodyOutput[analysisJSON]{Body: toAnalysis(an)}, nil
		})

	dl := operation(http.MethodGet, "/api/v1/orgs/{org}/projects/{project}/analyses/{id}/report", "get-analysis-report", "Scans", "Download an analysis report", http.StatusOK)
	dl.Responses = map[string]*huma.Response{"200": {
		Description: "The report bytes, as uploaded.",
		Content:     map[string]*huma.MediaType{"application/octet-stream": {Schema: &huma.Schema{Type: "string", Format: "binary"}}},
	}}
	huma.Register(a.huma, dl, func(ctx context.Context, in *analysisInput) (*huma.StreamResponse, error) {
		if err := principal(ctx).Authorize(sot.PermissionBrowse, in.Org, in.Project); err != nil {
			return nil, err
		}
		an, err := a.cfg.Analyses.FindAnalysis(ctx, in.Org, in.Project, in.ID)
		if err != nil {
			return nil, err
		}
		rc, err := a.cfg.Analyses.OpenReport(ctx, in.Org, in.Project, in.ID)
		if err != nil {
			return nil, err
		}
		return &huma.StreamResponse{Body: func(hc huma.Context) {
			defer rc.Close()
			extendWriteDeadline(hc, reportReadTimeout)
			hc.SetHeader("Content-Type", "application/octet-stream")
			hc.SetHeader("Content-Length", strconv.FormatInt(an.Size, 10))
			if sum, err := hex.DecodeString(an.SHA256); err == nil {
				hc.SetHeader("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
			}
			hc.SetStatus(http.StatusOK)
			if _, err := io.Copy(hc.BodyWriter(), rc); err != nil {
				// The status is sent; all that is left is to cut the
				// response short and say why in the log.
				if ri := info(hc.Context()); ri != nil {
					ri.cause = err
				}
			}
		}}, nil
	})
}

// clientBody is a report body whose read errors (broken chunking, a
// client gone, a deadline) are the client's: 400, not 500. An empty
// report is refused too: no scanner sends one, and storage has no row for
// it.
type clientBody struct {
	r io.Reader
	n int64
}

var errEmptyReport = sot.Invalid("the report is empty")

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err == io.EOF && b.n == 0 {
		return n, errEmptyReport
	}
	if err != nil && err != io.EOF && sot.ErrorCode(err) == sot.EINTERNAL {
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			err = &sot.Error{Code: sot.EINVALID, Message: "cannot read the request body", Err: err}
		}
	}
	return n, err
}

// extendWriteDeadline gives the response d from now, over the server's
// WriteTimeout, for the routes that move reports.
func extendWriteDeadline(ctx huma.Context, d time.Duration) {
	if _, w := humago.Unwrap(ctx); w != nil {
		// An error only means the writer takes no deadlines.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
	}
}

func (a *API) errTooLarge() error {
	return sot.Errorf(sot.ETOOLARGE, "the report is larger than the limit of %d bytes", a.cfg.MaxReportBytes)
}
