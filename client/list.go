package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// listPage is one page of a keyset-paginated list.
type listPage[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"next_page_token"`
}

// list returns an iterator over every item of the list at path, fetching
// one page at a time as the loop advances. On an error it yields the zero
// item with the error once and stops.
func list[T any](ctx context.Context, c *Client, path string, q url.Values) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		q := cloneValues(q)
		if c.pageSize > 0 {
			q.Set("page_size", strconv.Itoa(c.pageSize))
		}
		for {
			var p listPage[T]
			if err := c.do(ctx, http.MethodGet, path, q, nil, &p); err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range p.Items {
				if !yield(it, nil) {
					return
				}
			}
			if p.NextPageToken == "" || len(p.Items) == 0 {
				return
			}
			q.Set("page_token", p.NextPageToken)
		}
	}
}

func cloneValues(q url.Values) url.Values {
	out := make(url.Values, len(q)+2)
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// Collect drains an iterator into a slice, stopping at the first error.
// It suits short lists; range over long ones instead.
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for it, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, it)
	}
	return out, nil
}
