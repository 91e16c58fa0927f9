package devstack

import (
	"bufio"
	"bytes"
	"regexp"
	"slices"
	"strings"
)

// Redacted replaces every secret in artifacts.
const Redacted = "<redacted>"

// minSecretLen keeps very short values (such as "0" or "no") from being
// treated as secrets everywhere they occur.
const minSecretLen = 4

var (
	// secretKey matches ini keys whose values are credentials.
	secretKey = regexp.MustCompile(`(?i)^\s*([a-z0-9_.-]*(password|passwd|secret|token|_key|credential)[a-z0-9_.-]*)\s*[=:]\s*(.*?)\s*$`)
	// urlCreds matches the password of user:password@ in URLs (transport_url, connection).
	urlCreds = regexp.MustCompile(`(://[^:/@\s]*:)([^@\s]+)(@)`)
)

// Redactor removes secrets from text: the ones it was given, the ones it
// learnt from configuration files, and every password in a URL.
type Redactor struct{ secrets []string }

// NewRedactor returns a Redactor that knows secrets.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.add(s)
	}
	return r
}

func (r *Redactor) add(s string) {
	s = strings.Trim(strings.TrimSpace(s), `"'`)
	if len(s) < minSecretLen || s == Redacted || slices.Contains(r.secrets, s) {
		return
	}
	r.secrets = append(r.secrets, s)
	// Longest first, so a secret that contains another is replaced whole.
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
}

// Learn collects the secrets an ini-style configuration file holds (values
// of keys such as password, secret, token and *_key, and URL passwords), so
// they are removed wherever they appear, in logs too.
func (r *Redactor) Learn(config []byte) {
	sc := bufio.NewScanner(bytes.NewReader(config))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if m := secretKey.FindStringSubmatch(line); m != nil && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			v := m[3]
			if !strings.HasPrefix(v, "/") { // a path to a key file is not a secret
				r.add(v)
			}
		}
		for _, m := range urlCreds.FindAllStringSubmatch(line, -1) {
			r.add(m[2])
		}
	}
}

// Redact returns b with every secret replaced by Redacted.
func (r *Redactor) Redact(b []byte) []byte {
	out := urlCreds.ReplaceAll(b, []byte("${1}"+Redacted+"${3}"))
	var buf bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if m := secretKey.FindStringSubmatchIndex(line); m != nil && m[7]-m[6] > 0 && !strings.HasPrefix(line[m[6]:m[7]], "/") {
			line = line[:m[6]] + Redacted + line[m[7]:]
		}
		buf.WriteString(line)
		buf.WriteByte('\n')
	}
	if sc.Err() != nil { // a line too long for the scanner: keep the text, literal replacement still applies
		buf.Reset()
		buf.Write(out)
	}
	out = buf.Bytes()
	for _, s := range r.secrets {
		out = bytes.ReplaceAll(out, []byte(s), []byte(Redacted))
	}
	return out
}
