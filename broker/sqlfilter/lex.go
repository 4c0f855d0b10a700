package sqlfilter

import (
	"fmt"
	"strings"
)

type tokenKind uint8

const (
	tkEOF     tokenKind = iota
	tkID                // a property name
	tkKeyword           // NOT AND OR BETWEEN IN TRUE FALSE NULL IS, text upper-cased
	tkString            // text is the decoded literal
	tkDecimal           // [1-9][0-9]*[lL]? or 0
	tkFloat             // 1.5, 1., .5, 1e5, 1.5E-3
	tkPunct             // = <> < <= > >= ( ) , + -
)

type token struct {
	kind tokenKind
	text string
	pos  int // byte offset in the expression
}

// keywords are the reserved words of SelectorParser.jj (4.x), matched case-insensitively.
var keywords = []string{"NOT", "AND", "OR", "BETWEEN", "IN", "TRUE", "FALSE", "NULL", "IS"}

// lex splits src into tokens the way SelectorParser's token manager does: longest match,
// keywords before names of the same length, whitespace and comments skipped. A "--" comment
// must end with a line break; without one the dashes are minus signs, as in Java.
func lex(src string) ([]token, error) {
	var out []token
	i := 0
	for {
		for i < len(src) {
			c := src[i]
			switch {
			case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
				i++
				continue
			case strings.HasPrefix(src[i:], "--"):
				if nl := strings.IndexAny(src[i:], "\n\r"); nl >= 0 {
					i += nl + 1
					continue
				}
			case strings.HasPrefix(src[i:], "/*"):
				end := strings.Index(src[i+2:], "*/")
				if end < 0 {
					return nil, errorAt(src, i, "unterminated comment")
				}
				i += 2 + end + 2
				continue
			}
			break
		}
		if i >= len(src) {
			return append(out, token{kind: tkEOF, pos: i}), nil
		}
		c := src[i]
		start := i
		switch {
		case isIDStart(c):
			for i < len(src) && isIDPart(src[i]) {
				i++
			}
			word := src[start:i]
			t := token{kind: tkID, text: word, pos: start}
			for _, k := range keywords {
				if strings.EqualFold(word, k) {
					t = token{kind: tkKeyword, text: k, pos: start}
				}
			}
			out = append(out, t)
		case c == '\'':
			var sb strings.Builder
			i++
			for {
				if i >= len(src) {
					return nil, errorAt(src, start, "unterminated string literal")
				}
				if src[i] == '\'' {
					if i+1 < len(src) && src[i+1] == '\'' {
						sb.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				sb.WriteByte(src[i])
				i++
			}
			out = append(out, token{kind: tkString, text: sb.String(), pos: start})
		case isDigit(c) || c == '.':
			kind, n := lexNumber(src[i:])
			if n == 0 {
				return nil, errorAt(src, start, "unexpected character '.'")
			}
			i += n
			out = append(out, token{kind: kind, text: src[start:i], pos: start})
		default:
			n := 0
			switch {
			case strings.HasPrefix(src[i:], "<>"), strings.HasPrefix(src[i:], "<="), strings.HasPrefix(src[i:], ">="):
				n = 2
			case strings.ContainsRune("=<>(),+-", rune(c)):
				n = 1
			default:
				return nil, errorAt(src, start, fmt.Sprintf("unexpected character %q", rune(c)))
			}
			i += n
			out = append(out, token{kind: tkPunct, text: src[start:i], pos: start})
		}
	}
}

// lexNumber returns the longest numeric token at the start of s (0 if none):
//
//	DECIMAL: "0" | [1-9][0-9]*[lL]?
//	FLOAT:   [0-9]+ "." [0-9]* EXP? | "." [0-9]+ EXP? | [0-9]+ EXP     EXP: [eE][+-]?[0-9]+
func lexNumber(s string) (tokenKind, int) {
	digits := func(from int) int {
		j := from
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		return j
	}
	exponent := func(from int) int { // end of an exponent at from, or from if none
		j := from
		if j >= len(s) || (s[j] != 'e' && s[j] != 'E') {
			return from
		}
		j++
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if k := digits(j); k > j {
			return k
		}
		return from
	}
	intEnd := digits(0)
	floatLen := 0
	switch {
	case intEnd > 0 && intEnd < len(s) && s[intEnd] == '.':
		floatLen = exponent(digits(intEnd + 1))
	case intEnd > 0:
		if e := exponent(intEnd); e > intEnd {
			floatLen = e
		}
	default: // starts with '.'
		if d := digits(1); d > 1 {
			floatLen = exponent(d)
		}
	}
	decLen := 0
	switch {
	case intEnd == 0:
	case s[0] == '0':
		decLen = 1
	default:
		decLen = intEnd
		if decLen < len(s) && (s[decLen] == 'l' || s[decLen] == 'L') {
			decLen++
		}
	}
	if floatLen > decLen {
		return tkFloat, floatLen
	}
	return tkDecimal, decLen
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIDStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '$'
}

func isIDPart(c byte) bool { return isIDStart(c) || isDigit(c) }

// errorAt is a syntax error pointing into the expression.
func errorAt(src string, pos int, msg string) error {
	return &SyntaxError{Pos: pos, Near: near(src, pos), Msg: msg}
}

func near(src string, pos int) string {
	const width = 24
	if pos >= len(src) {
		return "end of expression"
	}
	s := src[pos:]
	if len(s) > width {
		s = s[:width] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// SyntaxError is an expression the parser refuses: Pos is the byte offset of the problem.
type SyntaxError struct {
	Pos  int
	Near string
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("sqlfilter: %s at offset %d (near %s)", e.Msg, e.Pos, e.Near)
}
