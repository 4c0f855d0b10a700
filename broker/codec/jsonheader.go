package codec

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON header is on every frame, so both directions have a hand-written fast path:
// appendJSONHeader writes what encoding/json would (same keys, order and omissions), and
// decodeJSONHeaderFast parses the shapes clients send and gives up (ok == false) on anything
// unusual, leaving it to decodeJSONHeaderGeneral (jsonheader_general.go), which accepts what
// the Java broker accepts (see the package documentation). FuzzJSONHeaderFastPath checks that
// whenever the fast path accepts an input, the general decoder accepts it too and agrees.

func appendJSONHeader(dst []byte, c *Command) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(c.WireCode()), 10)
	dst = append(dst, `,"language":`...)
	dst = appendJSONString(dst, c.Language)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(c.Version), 10)
	dst = append(dst, `,"opaque":`...)
	dst = strconv.AppendInt(dst, int64(c.Opaque), 10)
	dst = append(dst, `,"flag":`...)
	dst = strconv.AppendInt(dst, int64(c.Flag), 10)
	if c.Remark != "" {
		dst = append(dst, `,"remark":`...)
		dst = appendJSONString(dst, c.Remark)
	}
	if len(c.ExtFields) > 0 {
		dst = append(dst, `,"extFields":{`...)
		var small [16]string
		keys := small[:0]
		for k := range c.ExtFields {
			keys = append(keys, k)
		}
		// Insertion sort: headers have a dozen keys at most, and sort.Strings costs more.
		for i := 1; i < len(keys); i++ {
			for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
				keys[j], keys[j-1] = keys[j-1], keys[j]
			}
		}
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSONString(dst, c.ExtFields[k])
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does: invalid UTF-8 becomes U+FFFD, and <, >, &,
// U+2028 and U+2029 are escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func decodeJSONHeader(hdr []byte) (*Command, error) {
	if c, ok := decodeJSONHeaderFast(hdr); ok {
		return c, nil
	}
	c, err := decodeJSONHeaderGeneral(hdr)
	if err != nil {
		return nil, fmt.Errorf("%w: json header: %v", ErrBadFrame, err)
	}
	return c, nil
}

type headerScanner struct {
	b []byte
	// str is b as one string: unescaped values are substrings of it, one allocation in all.
	text string
	i    int
}

func (s *headerScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *headerScanner) consume(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *headerScanner) literal(lit string) bool {
	s.ws()
	if strings.HasPrefix(s.text[s.i:], lit) {
		s.i += len(lit)
		return true
	}
	return false
}

// str reads a string, unescaping as encoding/json does; raw invalid UTF-8 is left to
// encoding/json.
func (s *headerScanner) str() (string, bool) {
	if !s.consume('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.text[start:s.i]
			s.i++
			if !utf8.ValidString(v) {
				return "", false
			}
			return v, true
		case c == '\\':
			return s.escapedStr(start)
		case c < 0x20:
			return "", false
		}
		s.i++
	}
	return "", false
}

// escapedStr finishes a string that has an escape at s.i; start is just after the quote.
func (s *headerScanner) escapedStr(start int) (string, bool) {
	out := make([]byte, 0, s.i-start+16)
	out = append(out, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return "", false
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					save := s.i
					s.i += 2
					if r2, ok = s.hex4(); !ok {
						return "", false
					}
					if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
						out = utf8.AppendRune(out, dec)
						continue
					}
					s.i = save
				}
				r = unicode.ReplacementChar
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return "", false
}

func (s *headerScanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	s.i += 4
	return r, true
}

// strOrNull reads a string or null ("" for null).
func (s *headerScanner) strOrNull() (string, bool) {
	if s.literal("null") {
		return "", true
	}
	return s.str()
}

// integer reads a JSON integer (no fraction or exponent) within [min, max].
func (s *headerScanner) integer(min, max int64) (int64, bool) {
	s.ws()
	start := s.i
	if !s.integerSyntax() {
		return 0, false
	}
	n, err := strconv.ParseInt(s.text[start:s.i], 10, 64)
	if err != nil || n < min || n > max {
		return 0, false
	}
	return n, true
}

var headerKeys = []string{"code", "language", "version", "opaque", "flag", "remark", "extFields"}

// decodeJSONHeaderFast parses the header shapes RocketMQ clients send: strings, integers,
// booleans and null as ext values. It returns ok == false for anything it does not handle
// exactly as decodeJSONHeaderGeneral would (raw invalid UTF-8, nesting, fractions and
// exponents, keys differing from ours only by case, duplicate extFields, numbers out of range).
func decodeJSONHeaderFast(b []byte) (*Command, bool) {
	s := &headerScanner{b: b, text: string(b)}
	c := &Command{}
	if !s.consume('{') {
		return nil, false
	}
	if s.consume('}') {
		return c, s.end()
	}
	seenExt := false
	for {
		key, ok := s.str()
		if !ok || !s.consume(':') {
			return nil, false
		}
		switch key {
		case "code":
			n, ok := s.integer(-1<<31, 1<<31-1)
			if !ok {
				return nil, false
			}
			c.Code, c.WideCode = splitCode(n)
		case "version":
			n, ok := s.integer(-1<<31, 1<<31-1)
			if !ok {
				return nil, false
			}
			c.Version = int32(n)
		case "opaque", "flag":
			n, ok := s.integer(-1<<31, 1<<31-1)
			if !ok {
				return nil, false
			}
			if key == "opaque" {
				c.Opaque = int32(n)
			} else {
				c.Flag = int32(n)
			}
		case "language", "remark":
			v, ok := s.strOrNull()
			if !ok {
				return nil, false
			}
			if key == "language" {
				c.Language = v
			} else {
				c.Remark = v
			}
		case "extFields":
			if seenExt {
				return nil, false
			}
			seenExt = true
			if s.literal("null") {
				break
			}
			if !s.consume('{') {
				return nil, false
			}
			// Sized by the colons left (one a field at least; capped, since a value may hold
			// any number), so that a header's map seldom grows.
			c.ExtFields = make(map[string]string, min(strings.Count(s.text[s.i:], ":"), 32))
			if !s.consume('}') {
				for {
					k, ok := s.str()
					if !ok || !s.consume(':') {
						return nil, false
					}
					v, present, ok := s.extValue()
					if !ok {
						return nil, false
					}
					if present {
						c.ExtFields[k] = v
					} else {
						delete(c.ExtFields, k) // null: absent, as Java's map.get sees it
					}
					if s.consume('}') {
						break
					}
					if !s.consume(',') {
						return nil, false
					}
				}
			}
		default:
			for _, k := range headerKeys {
				if strings.EqualFold(k, key) {
					return nil, false
				}
			}
			if !s.skipScalar() {
				return nil, false
			}
		}
		if s.consume('}') {
			return c, s.end()
		}
		if !s.consume(',') {
			return nil, false
		}
	}
}

// extValue reads an ext field's value as the Java broker sees it: a string as is, an integer
// as its literal text, true or false as that word; null is absent (present == false).
// Anything else (fractions, exponents, objects, arrays) is left to the general decoder.
func (s *headerScanner) extValue() (v string, present, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return "", false, false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		v, ok := s.str()
		return v, true, ok
	case c == 'n':
		return "", false, s.literal("null")
	case c == 't':
		return "true", true, s.literal("true")
	case c == 'f':
		return "false", true, s.literal("false")
	case c == '-' || c >= '0' && c <= '9':
		start := s.i
		if !s.integerSyntax() {
			return "", false, false
		}
		return s.text[start:s.i], true, true
	}
	return "", false, false
}

// integerSyntax skips a JSON number without fraction or exponent, of any size.
func (s *headerScanner) integerSyntax() bool {
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || s.i-digits > 1 && s.b[digits] == '0' {
		return false
	}
	return s.i == len(s.b) || s.b[s.i] != '.' && s.b[s.i] != 'e' && s.b[s.i] != 'E'
}

// splitCode stores a 32-bit header code as Code, or as CodeOutOfRange and WideCode.
func splitCode(n int64) (int16, int32) {
	if n >= -1<<15 && n < 1<<15 {
		return int16(n), 0
	}
	return CodeOutOfRange, int32(n)
}

// skipScalar skips an unknown key's value if it is a plain string, number, true, false or null.
func (s *headerScanner) skipScalar() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.integerSyntax()
	}
	return false
}

func (s *headerScanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}
