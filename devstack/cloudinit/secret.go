package cloudinit

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/stackgate/stackgate/devstack"
)

// Redacted is what every printed or serialised Secret shows instead of its value.
const Redacted = devstack.Redacted

// Secret is a password or token. It prints (with any fmt verb), and marshals
// to text, JSON or YAML, as Redacted, so a LocalConf or Input that reaches a
// log or an artifact never carries it. Reveal returns the value.
type Secret string

// Reveal returns the secret's value; call it only where the value is needed.
func (s Secret) Reveal() string { return string(s) }

// String returns Redacted.
func (Secret) String() string { return Redacted }

// GoString returns Redacted, quoted.
func (Secret) GoString() string { return fmt.Sprintf("%q", Redacted) }

// Format writes Redacted whatever the verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// MarshalText returns Redacted.
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Passwords are the credentials DevStack sets up. The controller and the
// worker must share them: the worker's services log in to the controller's
// database, message queue and keystone with them.
type Passwords struct {
	// Admin is keystone's admin (and demo) password (ADMIN_PASSWORD).
	Admin Secret `json:"admin"`
	// Database is MySQL's root password (DATABASE_PASSWORD).
	Database Secret `json:"database"`
	// RabbitMQ is the message queue's password (RABBIT_PASSWORD).
	RabbitMQ Secret `json:"rabbitMQ"`
	// Service is the password of every service user (SERVICE_PASSWORD).
	Service Secret `json:"service"`
	// ServiceToken is keystone's bootstrap token (SERVICE_TOKEN).
	ServiceToken Secret `json:"serviceToken"`
}

// passwordPattern is what DevStack handles safely: its values end up
// unquoted in shell, in URLs (mysql+pymysql://root:PASSWORD@host) and in INI
// files, so only letters, digits, '_' and '-' are accepted.
var passwordPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{8,128}$`)

const passwordAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// NewPasswords returns five independent random passwords of 24 letters and digits.
func NewPasswords() (Passwords, error) {
	var p Passwords
	for _, dst := range p.fields() {
		s, err := randomString(24)
		if err != nil {
			return Passwords{}, fmt.Errorf("generating DevStack passwords: %w", err)
		}
		*dst.value = Secret(s)
	}
	return p, nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		// 62 symbols: the bias of b%62 is irrelevant for test passwords of 24 symbols.
		b[i] = passwordAlphabet[int(b[i])%len(passwordAlphabet)]
	}
	return string(b), nil
}

type passwordField struct {
	name  string
	value *Secret
}

func (p *Passwords) fields() []passwordField {
	return []passwordField{
		{"Admin", &p.Admin},
		{"Database", &p.Database},
		{"RabbitMQ", &p.RabbitMQ},
		{"Service", &p.Service},
		{"ServiceToken", &p.ServiceToken},
	}
}

// Validate reports every password that is empty or holds characters DevStack
// cannot take. Errors name the field, never the value.
func (p Passwords) Validate() error {
	var errs []error
	for _, f := range p.fields() {
		switch {
		case *f.value == "":
			errs = append(errs, fmt.Errorf("Passwords.%s is empty; generate the passwords with cloudinit.NewPasswords", f.name))
		case !passwordPattern.MatchString(string(*f.value)):
			errs = append(errs, fmt.Errorf("Passwords.%s must be 8 to 128 letters, digits, '_' or '-' (DevStack writes it unquoted into shell, URLs and INI files); generate the passwords with cloudinit.NewPasswords", f.name))
		}
	}
	return errors.Join(errs...)
}
