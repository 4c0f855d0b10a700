package config

import (
	"fmt"
	"io"
	"strings"
)

// Setting is one effective setting of a process, as --print-config shows it.
type Setting struct {
	Key    string // a RocketMQ key, or a Sluice flag name for settings no key sets
	Value  string
	Source string // "default", "file:LINE", "flag --name"
}

// Format writes settings as a properties file an operator could load again: one key=value
// line each, after a comment with its source (properties have no trailing comments), and for
// a key Sluice parses but does not act on yet, a comment saying so.
func Format(w io.Writer, title string, settings []Setting) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", title)
	for _, s := range settings {
		if s.Source != "" {
			fmt.Fprintf(&b, "# %s\n", s.Source)
		}
		if why := NotActed(s.Key); why != "" {
			fmt.Fprintf(&b, "# NOTE %s\n", why)
		}
		fmt.Fprintf(&b, "%s=%s\n", s.Key, escapeValue(s.Value))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Source is where key's value came from: the flag if it was set, else the file, else the default.
func Source(f *File, key, flagName string, flagSet bool) string {
	switch {
	case flagSet:
		return "flag --" + flagName
	case f != nil && f.Has(key):
		return fmt.Sprintf("%s:%d", f.Path, f.Line(key))
	}
	return "default"
}

// escapeValue escapes what ParseProperties would read differently: a leading blank, a
// backslash and the control characters it unescapes.
func escapeValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "\f", `\f`)
	v = r.Replace(v)
	if strings.HasPrefix(v, " ") {
		v = `\` + v
	}
	return v
}
