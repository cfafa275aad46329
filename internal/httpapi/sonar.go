package httpapi

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

// The SonarQube Cloud compatible endpoints that CI integrations call to
// verify a token and pick an organization (Azure DevOps service connection,
// SonarCloudPrepare, Jenkins, scripts).

type validateOutput struct {
	Body struct {
		Valid bool `json:"valid"`
	}
}

type orgSearchInput struct {
	Member        bool   `query:"member" doc:"Only organizations the caller belongs to (always the case for tokens and non-admin users)."`
	Organizations string `query:"organizations" maxLength:"10000" doc:"Comma-separated organization keys."`
	P             int    `query:"p" minimum:"1" default:"1" doc:"Page index, from 1."`
	PS            int    `query:"ps" minimum:"1" maximum:"500" default:"100" doc:"Page size."`
}

type sonarOrg struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type sonarPaging struct {
	PageIndex int `json:"pageIndex"`
	PageSize  int `json:"pageSize"`
	Total     int `json:"total"`
}

type orgSearchOutput struct {
	Body struct {
		Paging        sonarPaging `json:"paging"`
		Organizations []sonarOrg  `json:"organizations"`
	}
}

// maxSonarOrgs bounds what the search reads: page index × page size.
const maxSonarOrgs = 10_000

func (a *API) registerSonar() {
	huma.Register(a.huma, optionalAuth(operation(http.MethodGet, "/api/authentication/validate", "sonar-validate", "SonarQube compatibility", "Check whether the credential is valid (always 200)", http.StatusOK)),
		func(ctx context.Context, _ *struct{}) (*validateOutput, error) {
			out := &validateOutput{}
			out.Body.Valid = principal(ctx) != nil
			return out, nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/organizations/search", "sonar-search-organizations", "SonarQube compatibility", "List the caller's organizations", http.StatusOK),
		func(ctx context.Context, in *orgSearchInput) (*orgSearchOutput, error) {
			var keys []string
			if in.Organizations != "" {
				for _, k := range strings.Split(in.Organizations, ",") {
					if k = strings.TrimSpace(k); k != "" {
						keys = append(keys, k)
					}
				}
			}
			skip := (in.P - 1) * in.PS
			if skip+in.PS > maxSonarOrgs {
				return nil, sot.Invalid("page beyond the last searchable organization", sot.FieldError{Field: "query.p", Message: "p × ps must stay within 10,000"})
			}
			var all []*sot.Org
			page := sot.Page{Size: sot.MaxPageSize}
			for {
				orgs, next, err := a.visibleOrgs(ctx, keys, in.Member, page)
				if err != nil {
					return nil, err
				}
				all = append(all, orgs...)
				if next == "" || len(all) >= skip+in.PS {
					break
				}
				page.Token = next
			}
			total := len(all)
			if p := principal(ctx); p.Kind != sot.PrincipalOrgToken {
				n, err := a.cfg.Orgs.CountOrgs(ctx, userOrgFilter(p, keys, in.Member))
				if err != nil {
					return nil, err
				}
				total = n
			}
			out := &orgSearchOutput{}
			out.Body.Paging = sonarPaging{PageIndex: in.P, PageSize: in.PS, Total: total}
			out.Body.Organizations = []sonarOrg{}
			for i := skip; i < len(all) && i < skip+in.PS; i++ {
				o := all[i]
				out.Body.Organizations = append(out.Body.Organizations, sonarOrg{Key: o.Key, Name: o.Name, Description: o.Description})
			}
			return out, nil
		})

	a.mux.HandleFunc("GET /api/server/version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, a.cfg.Version)
	})
}
