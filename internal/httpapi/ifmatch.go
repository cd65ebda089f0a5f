package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/service"
)

// revisionIfMatch is the reference's revision-if-match extension.
var revisionIfMatch = Extension{"revision-if-match", "If-Match constraints based on revision_number",
	"Extension indicating that If-Match based on revision_number is supported.", "2016-12-11T00:00:00-00:00"}

// withIfMatch returns r constrained by its If-Match header: among the
// header's entity tags (comma separated, quoted or not), one of the form
// revision_number=N makes the request's write conditional on the
// resource being at revision N; other tags are ignored, as the reference
// does.
func withIfMatch(r *http.Request, collection, id string) (*http.Request, error) {
	var rev *int
	for _, h := range r.Header.Values("If-Match") {
		for _, tag := range strings.Split(h, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			tag = strings.Trim(tag, `"`)
			v, ok := strings.CutPrefix(tag, "revision_number=")
			if !ok {
				continue
			}
			if rev != nil {
				return r, neutron.BadRequest("Bad if-match request: Multiple revision_number etags are not supported.")
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return r, neutron.BadRequest("Bad if-match request: Revision number etag must be in the format of revision_number=<int>.")
			}
			rev = &n
		}
	}
	if rev == nil {
		return r, nil
	}
	ctx, err := service.WithRevisionConstraint(r.Context(), &service.RevisionConstraint{Collection: collection, ID: id, Revision: *rev})
	if err != nil {
		return r, err
	}
	return r.WithContext(ctx), nil
}
