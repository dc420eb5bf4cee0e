package oss

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"github.com/ossjobwatch/ossjobwatch/job"
)

// ListJobsOptions are ListJobs' request parameters.
type ListJobsOptions struct {
	// Statuses filters by status; empty lists every status. A sweep that
	// diffs must not filter: a job whose status changed would look as if it
	// had vanished.
	Statuses []job.Status
	// MaxKeys is the page size, 1 to 1000. Defaults to 1000.
	MaxKeys int
	// ContinuationToken resumes a listing where NextToken said.
	ContinuationToken string
}

// MaxTokenLength is the longest continuation token OSS accepts.
const MaxTokenLength = 1024

func (o ListJobsOptions) params() (map[string]string, error) {
	p := map[string]string{"batchJob": ""}
	maxKeys := o.MaxKeys
	if maxKeys == 0 {
		maxKeys = 1000
	}
	if maxKeys < 1 || maxKeys > 1000 {
		return nil, fmt.Errorf("max-keys %d: must be from 1 to 1000", o.MaxKeys)
	}
	p["max-keys"] = strconv.Itoa(maxKeys)
	if len(o.Statuses) > 0 {
		names := make([]string, len(o.Statuses))
		for i, s := range o.Statuses {
			if !s.Known() {
				return nil, fmt.Errorf("status filter %q: not a known status (known: %s)", s, knownStatuses())
			}
			names[i] = string(s)
		}
		p["batchJobStatuses"] = strings.Join(names, "|")
	}
	if o.ContinuationToken != "" {
		if len(o.ContinuationToken) > MaxTokenLength {
			return nil, fmt.Errorf("continuation token: %d characters, more than %d", len(o.ContinuationToken), MaxTokenLength)
		}
		p["continuation-token"] = o.ContinuationToken
	}
	return p, nil
}

func knownStatuses() string {
	names := make([]string, len(job.Statuses))
	for i, s := range job.Statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Page is one ListJobs answer.
type Page struct {
	Jobs []job.Job
	// NextToken is empty on the last page.
	NextToken string
	// RequestID is OSS's x-oss-request-id, for support cases.
	RequestID string
}

// ListJobs fetches one page. The SDK encodes the token, so tokens holding
// '+', '/', '=', '?' or '#' survive the trip.
func (c *Client) ListJobs(ctx context.Context, opts ListJobsOptions) (*Page, error) {
	params, err := opts.params()
	if err != nil {
		return nil, fmt.Errorf("oss ListJobs: %w", &invalidRequestError{err})
	}
	body, reqID, err := c.invoke(ctx, "ListJobs", params)
	if err != nil {
		return nil, err
	}
	page, err := DecodeListJobs(body)
	if err != nil {
		return nil, &DecodeError{Op: "ListJobs", RequestID: reqID, Err: err}
	}
	page.RequestID = reqID
	return page, nil
}

// DescribeJob fetches one job's details. An unknown id gives an *APIError
// whose NotFound reports true.
func (c *Client) DescribeJob(ctx context.Context, id string) (*job.Detail, error) {
	if id == "" {
		return nil, fmt.Errorf("oss DescribeJob: %w", &invalidRequestError{errors.New("empty job id")})
	}
	body, reqID, err := c.invoke(ctx, "DescribeJob", map[string]string{"batchJob": "", "batchJobId": id})
	if err != nil {
		return nil, err
	}
	d, err := DecodeDescribeJob(body)
	if err != nil {
		return nil, &DecodeError{Op: "DescribeJob", RequestID: reqID, Err: err}
	}
	return d, nil
}

// Pager walks every page of a listing. Use it once:
//
//	p := client.Pager(oss.ListJobsOptions{})
//	for page, err := range p.All(ctx) {
//		if err != nil {
//			return err
//		}
//		…
//	}
//	if !p.Complete() { … }
type Pager struct {
	c        *Client
	opts     ListJobsOptions
	pages    int
	jobs     int
	complete bool
}

// Pager returns a pager over every page matching opts, starting at
// opts.ContinuationToken.
func (c *Client) Pager(opts ListJobsOptions) *Pager {
	return &Pager{c: c, opts: opts}
}

// All yields every page in turn. On an error it yields (nil, err) once and
// stops; the pages before it stay valid but the listing is incomplete. It
// stops with an error when OSS repeats a continuation token (a loop) or
// the listing passes Config.MaxPages.
func (p *Pager) All(ctx context.Context) iter.Seq2[*Page, error] {
	return func(yield func(*Page, error) bool) {
		seen := map[string]bool{}
		opts := p.opts
		for {
			if p.pages >= p.c.cfg.MaxPages {
				yield(nil, fmt.Errorf("oss ListJobs: listing passed %d pages without an end", p.c.cfg.MaxPages))
				return
			}
			page, err := p.c.ListJobs(ctx, opts)
			if err != nil {
				yield(nil, fmt.Errorf("list jobs page %d: %w", p.pages+1, err))
				return
			}
			p.pages++
			p.jobs += len(page.Jobs)
			if page.NextToken != "" {
				if seen[page.NextToken] {
					yield(nil, fmt.Errorf("list jobs page %d: OSS repeated a continuation token (request id %s)", p.pages, page.RequestID))
					return
				}
				seen[page.NextToken] = true
			} else {
				p.complete = true
			}
			if !yield(page, nil) || p.complete {
				return
			}
			opts.ContinuationToken = page.NextToken
		}
	}
}

// Complete reports whether the listing reached a page without NextToken.
func (p *Pager) Complete() bool { return p.complete }

// Pages is how many pages were fetched.
func (p *Pager) Pages() int { return p.pages }

// Jobs is how many job descriptors the fetched pages held.
func (p *Pager) Jobs() int { return p.jobs }
