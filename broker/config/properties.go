package config

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Entry is one key=value pair of a properties file.
type Entry struct {
	Key, Value string
	Line       int // 1-based line the entry starts on
}

// MaxFileBytes bounds a configuration file: a broker.conf is a few KiB.
const MaxFileBytes = 1 << 20

// ParseProperties reads text in java.util.Properties' line format, as RocketMQ reads its
// broker.conf and namesrv.conf: blank lines and lines starting with '#' or '!' are skipped;
// a key ends at the first unescaped '=', ':' or white space, and the separator may be
// surrounded by white space; a line ending in an odd number of backslashes continues on the
// next (whose leading white space is dropped); \t \n \r \f \uXXXX and \<any> are unescaped.
// Values are trimmed of trailing white space (Java keeps it; a trailing blank in a
// broker.conf is never meant). A key given twice is an error naming both lines, and so is
// text that is not UTF-8.
func ParseProperties(text []byte) ([]Entry, error) {
	if len(text) > MaxFileBytes {
		return nil, fmt.Errorf("%d bytes: larger than %d", len(text), MaxFileBytes)
	}
	if !utf8.Valid(text) {
		return nil, fmt.Errorf("not UTF-8 text")
	}
	lines := strings.Split(strings.ReplaceAll(strings.ReplaceAll(string(text), "\r\n", "\n"), "\r", "\n"), "\n")
	var out []Entry
	seen := map[string]int{}
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		// Join continuation lines.
		for endsInEscape(line) && i+1 < len(lines) {
			i++
			line = line[:len(line)-1] + strings.TrimLeft(lines[i], " \t\f")
		}
		if endsInEscape(line) { // a continuation at end of file continues onto nothing
			line = line[:len(line)-1]
		}
		key, value, err := splitEntry(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", start, err)
		}
		if prev, dup := seen[key]; dup {
			return nil, fmt.Errorf("line %d: key %s set again (first set on line %d)", start, key, prev)
		}
		seen[key] = start
		out = append(out, Entry{Key: key, Value: strings.TrimRight(value, " \t\f"), Line: start})
	}
	return out, nil
}

// endsInEscape reports whether s ends in an odd number of backslashes.
func endsInEscape(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitEntry splits one logical line into its unescaped key and value.
func splitEntry(line string) (string, string, error) {
	end := len(line)
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\\' {
			i++
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			end = i
			break
		}
	}
	rest := strings.TrimLeft(line[end:], " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	key, err := unescape(line[:end])
	if err != nil {
		return "", "", fmt.Errorf("key: %w", err)
	}
	value, err := unescape(rest)
	if err != nil {
		return "", "", fmt.Errorf("value of %s: %w", key, err)
	}
	return key, value, nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf(`malformed \uXXXX escape`)
			}
			r, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf(`malformed \uXXXX escape %q`, s[i-1:i+5])
			}
			b.WriteRune(rune(r))
			i += 4
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}
