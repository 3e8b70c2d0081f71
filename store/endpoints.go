package store

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// EndpointPolicy says which S3-compatible endpoints configurations may name. A configuration's
// endpoint is where the service sends requests on a customer's behalf, so a multi-tenant
// operator restricts it to the S3 services it means to reach: otherwise a customer could point
// the service at hosts inside its network. The zero value allows any endpoint.
type EndpointPolicy struct {
	restricted bool
	patterns   []string // lower-case host or host:port; "*." matches any subdomain
}

var endpointPattern = regexp.MustCompile(`^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:[0-9]{1,5})?$|^\[[0-9a-f:.]+\](:[0-9]{1,5})?$`)

// ParseEndpointPolicy reads a policy: "" allows any endpoint, "none" none (AWS only), else a
// comma-separated list of host[:port] patterns such as "minio.internal:9000,*.r2.cloudflarestorage.com";
// a pattern without a port matches any port.
func ParseEndpointPolicy(s string) (EndpointPolicy, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		return EndpointPolicy{}, nil
	}
	p := EndpointPolicy{restricted: true}
	if s == "none" {
		return p, nil
	}
	for _, pattern := range strings.Split(s, ",") {
		pattern = strings.TrimSpace(pattern)
		if !endpointPattern.MatchString(pattern) {
			return EndpointPolicy{}, fmt.Errorf("allowed endpoints: %q is not a host[:port] pattern such as s3.example.com, *.example.com or 10.0.0.5:9000", pattern)
		}
		p.patterns = append(p.patterns, pattern)
	}
	return p, nil
}

// Check returns why endpoint (a base URL that passed ValidateEndpoint, or "" for AWS) is not
// allowed, or nil.
func (p EndpointPolicy) Check(endpoint string) error {
	if !p.restricted || endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	for _, pattern := range p.patterns {
		patternHost, patternPort := pattern, ""
		if i := strings.LastIndex(pattern, ":"); i >= 0 && !strings.HasSuffix(pattern, "]") {
			patternHost, patternPort = pattern[:i], pattern[i+1:]
		}
		patternHost = strings.Trim(patternHost, "[]")
		if patternPort != "" && patternPort != port {
			continue
		}
		if suffix, ok := strings.CutPrefix(patternHost, "*"); ok && strings.HasSuffix(host, suffix) && host != suffix[1:] {
			return nil
		}
		if host == patternHost {
			return nil
		}
	}
	if len(p.patterns) == 0 {
		return fmt.Errorf("this server allows no custom endpoint: leave it out to use AWS S3")
	}
	return fmt.Errorf("%s is not among this server's allowed endpoints", u.Host)
}

// String describes the policy for the log.
func (p EndpointPolicy) String() string {
	switch {
	case !p.restricted:
		return "any"
	case len(p.patterns) == 0:
		return "none"
	}
	return strings.Join(p.patterns, ",")
}
