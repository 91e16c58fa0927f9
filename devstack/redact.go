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
	// secretName matches the names of variables and options whose values
	// are credentials: "key" only at a word's end (api_key, apikey,
	// key_file), so that names such as keystone_authtoken's
	// www_authenticate_uri or KEYSTONE_SERVICE_URI stay readable.
	secretName = regexp.MustCompile(`(?i)passw(or)?d|secret|token|credential|keys?([^a-z]|$)`)
	// iniOption matches an option of an ini-style file or a shell
	// variable, exported or not: name, then = or :, then the value.
	iniOption = regexp.MustCompile(`^\s*(?:export\s+)?([A-Za-z0-9_.-]+)\s*[=:]\s*(.*?)\s*$`)
	// urlAuthority matches a URL's scheme and authority (everything up to
	// the path, query, fragment or the end of the word).
	urlAuthority = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]*`)
	// urlQueryParam matches one parameter of a URL's query, with the ? or &
	// before it.
	urlQueryParam = regexp.MustCompile(`[?&][A-Za-z0-9_.-]+=[^&#\s"']+`)
	// notSecret matches values that name no credential even under a
	// credential-looking option (send_service_user_token = true):
	// booleans and numbers.
	notSecret = regexp.MustCompile(`(?i)^(true|false|yes|no|on|off|none|[0-9.]+)$`)
)

// IsSecretName reports whether a variable or option called name holds a
// credential: its name contains password, passwd, secret, token or
// credential, or ends a word with key or keys (ADMIN_PASSWORD,
// memcache_secret_key, admin_token, api_key).
func IsSecretName(name string) bool { return mayNameSecret(name) && secretName.MatchString(name) }

// RedactURLCredentials returns s with the credentials of every URL
// replaced by Redacted: the password of its user information
// (scheme://user:password@host; each host of a multi-host URL such as
// rabbit://u:p@h1,u:q@h2/ counts) and the value of every query parameter
// IsSecretName picks (?token=..., &X-Auth-Token=...).
func RedactURLCredentials(s string) string {
	// Most log lines hold neither a URL with user information nor a query
	// parameter named like a credential; they skip the regular expressions.
	if strings.Contains(s, "://") && strings.Contains(s, "@") {
		s = urlAuthority.ReplaceAllStringFunc(s, redactUserPasswords)
	}
	if !strings.ContainsAny(s, "?&") || !mayNameSecret(s) {
		return s
	}
	return urlQueryParam.ReplaceAllStringFunc(s, func(p string) string {
		if name, value, ok := secretQueryParam(p); ok && value != Redacted {
			return p[:1] + name + "=" + Redacted
		}
		return p
	})
}

// secretQueryParam splits a query parameter that urlQueryParam matched
// into its name and value; ok says whether IsSecretName picks the name.
func secretQueryParam(p string) (name, value string, ok bool) {
	name, value, _ = strings.Cut(p[1:], "=")
	return name, value, IsSecretName(name)
}

// redactUserPasswords replaces the password of every host's user
// information in a URL's scheme and authority by Redacted.
func redactUserPasswords(u string) string {
	scheme, authority, _ := strings.Cut(u, "://")
	hosts := strings.Split(authority, ",")
	for i, h := range hosts {
		if user, password, ok := userPassword(h); ok && password != "" {
			hosts[i] = user + ":" + Redacted + h[strings.LastIndex(h, "@"):]
		}
	}
	return scheme + "://" + strings.Join(hosts, ",")
}

// urlPasswords returns the password of every URL's user information in s.
func urlPasswords(s string) []string {
	var out []string
	for _, u := range urlAuthority.FindAllString(s, -1) {
		_, authority, _ := strings.Cut(u, "://")
		for _, h := range strings.Split(authority, ",") {
			if _, password, ok := userPassword(h); ok {
				out = append(out, password)
			}
		}
	}
	return out
}

// userPassword splits one host of a URL's authority (user:password@host)
// into its user and password; ok is false without both.
func userPassword(host string) (user, password string, ok bool) {
	at := strings.LastIndex(host, "@")
	if at < 0 {
		return "", "", false
	}
	return strings.Cut(host[:at], ":")
}

// secretValue reports whether value, held by an option named like a
// credential, is one: a path to a key file, a boolean or a number is not.
func secretValue(value string) bool {
	value = strings.Trim(value, `"'`)
	return value != "" && !strings.HasPrefix(value, "/") && !notSecret.MatchString(value)
}

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

// Learn collects the secrets an ini-style configuration file or a shell
// variable file holds (the values of options and URL query parameters
// IsSecretName picks, and URL passwords), so they are removed wherever
// they appear, in logs too. Comments are skipped.
func (r *Redactor) Learn(config []byte) {
	sc := bufio.NewScanner(bytes.NewReader(config))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
			continue
		}
		if m := iniOption.FindStringSubmatch(line); m != nil && IsSecretName(m[1]) && secretValue(m[2]) {
			r.add(m[2])
		}
		for _, p := range urlPasswords(line) {
			r.add(p)
		}
		for _, m := range urlQueryParam.FindAllString(line, -1) {
			if _, value, ok := secretQueryParam(m); ok && secretValue(value) {
				r.add(value)
			}
		}
	}
}

// Redact returns b with every secret replaced by Redacted: URL
// credentials (RedactURLCredentials), the values of options IsSecretName
// picks (a whole line's "name = value", and "name=value" or "name: value"
// within a line up to the next space), and every secret it knows
// wherever it appears.
func (r *Redactor) Redact(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b) + len(b)/16)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := RedactURLCredentials(sc.Text())
		if mayNameSecret(line) {
			if m := iniOption.FindStringSubmatchIndex(line); m != nil && IsSecretName(line[m[2]:m[3]]) && secretValue(line[m[4]:m[5]]) {
				line = line[:m[4]] + Redacted + line[m[5]:]
			}
			line = redactInlineOptions(line)
		}
		buf.WriteString(line)
		buf.WriteByte('\n')
	}
	if sc.Err() != nil { // a line too long for the scanner: URL and literal replacement still apply
		buf.Reset()
		buf.WriteString(RedactURLCredentials(string(b)))
	}
	return r.RedactKnown(buf.Bytes())
}

// secretWords are the words every name IsSecretName picks contains, in
// lower case: secretName's alternatives without their endings.
var secretWords = []string{"passw", "secret", "token", "credential", "key"}

// mayNameSecret reports whether line holds one of secretWords in any case:
// only then can it hold a name IsSecretName picks. Most log lines and
// names hold none and skip the regular expressions, which cost far more
// than this scan.
func mayNameSecret(line string) bool {
	for i := 0; i < len(line); i++ {
		if !secretWordStart[line[i]] {
			continue
		}
		for _, w := range secretWords {
			if line[i]|0x20 == w[0] && len(line)-i >= len(w) && strings.EqualFold(line[i:i+len(w)], w) {
				return true
			}
		}
	}
	return false
}

// secretWordStart marks the first letters of secretWords, in both cases.
var secretWordStart = func() (t [256]bool) {
	for _, w := range secretWords {
		t[w[0]], t[w[0]-'a'+'A'] = true, true
	}
	return t
}()

// redactInlineOptions replaces, within line, the value of every option
// written as logs write them, "name=value", "name: value", JSON's
// "name": "value", whose name IsSecretName picks and whose value
// secretValue takes for a credential. The name may be quoted and followed
// by spaces; the value, quoted or not, ends at white space, a quote or a
// separator (,;&)}]). Values already redacted are left. A scan, not a
// regular expression: this runs on every log line that names a secret.
func redactInlineOptions(line string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(line); i++ {
		if line[i] != '=' && line[i] != ':' {
			continue
		}
		j := i
		for j > last && isSpace(line[j-1]) {
			j--
		}
		if j > last && isQuote(line[j-1]) {
			j--
		}
		nameEnd := j
		for j > last && isNameByte(line[j-1]) {
			j--
		}
		if name := line[j:nameEnd]; name == "" || !IsSecretName(name) {
			continue
		}
		k := i + 1
		for k < len(line) && isSpace(line[k]) {
			k++
		}
		if k < len(line) && isQuote(line[k]) {
			k++
		}
		valueStart := k
		for k < len(line) && !isValueEnd(line[k]) {
			k++
		}
		value := line[valueStart:k]
		if value == "" || strings.HasPrefix(value, Redacted) || !secretValue(value) {
			continue
		}
		b.WriteString(line[last:valueStart])
		b.WriteString(Redacted)
		last = k
		i = k - 1
	}
	if last == 0 {
		return line
	}
	b.WriteString(line[last:])
	return b.String()
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

func isQuote(c byte) bool { return c == '"' || c == '\'' }

// isNameByte reports whether c may be part of an option's name.
func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// isValueEnd reports whether c ends an inline option's value.
func isValueEnd(c byte) bool {
	return isSpace(c) || isQuote(c) || strings.IndexByte(",;&)}]", c) >= 0
}

// RedactKnown returns b with every secret r knows replaced by Redacted,
// and nothing else changed.
func (r *Redactor) RedactKnown(b []byte) []byte {
	for _, s := range r.secrets {
		b = bytes.ReplaceAll(b, []byte(s), []byte(Redacted))
	}
	return b
}
