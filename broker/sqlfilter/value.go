package sqlfilter

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// kind is the Java class a value would have in RocketMQ's evaluator: message properties are
// always strings; literals are Integer (a decimal that fits in 32 bits), Long, Double,
// String or Boolean; NULL and missing properties are null.
type kind uint8

const (
	kNull kind = iota
	kBool
	kInt
	kLong
	kDouble
	kString
)

func (k kind) String() string {
	return [...]string{"null", "boolean", "integer", "long", "double", "string"}[k]
}

type value struct {
	k kind
	b bool
	i int64 // kInt (within int32) and kLong
	f float64
	s string
}

var (
	null   = value{}
	vTrue  = value{k: kBool, b: true}
	vFalse = value{k: kBool}
)

func boolValue(b bool) value {
	if b {
		return vTrue
	}
	return vFalse
}

func (v value) String() string {
	switch v.k {
	case kBool:
		if v.b {
			return "TRUE"
		}
		return "FALSE"
	case kInt, kLong:
		return strconv.FormatInt(v.i, 10)
	case kDouble:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case kString:
		return "'" + strings.ReplaceAll(v.s, "'", "''") + "'"
	}
	return "NULL"
}

func (v value) numeric() bool { return v.k == kInt || v.k == kLong || v.k == kDouble }

// compare is ComparisonExpression.__compare with string conversion on (as SelectorParser
// always sets it): values of different kinds are converted towards each other, a string to
// the other side's kind (an error if it does not parse, which makes the message not match);
// kinds with no conversion compare as -1 ("less"), and a boolean on the left of a string is an
// error (Java throws a ClassCastException there). Neither side may be null.
func compare(l, r value) (int, error) {
	if l.k == r.k {
		return compareSame(l, r), nil
	}
	var err error
	switch l.k {
	case kBool:
		if r.k == kString {
			return 0, fmt.Errorf("cannot compare boolean %v with string %v", l, r)
		}
		return -1, nil
	case kInt, kLong, kDouble:
		switch {
		case r.k == kString:
			r, err = parseAs(l.k, r.s)
		case r.numeric():
			l, r = widen(l, r)
		default:
			return -1, nil
		}
	case kString:
		if r.k == kNull {
			return -1, nil
		}
		l, err = parseAs(r.k, l.s)
	}
	if err != nil {
		return 0, err
	}
	return compareSame(l, r), nil
}

// widen brings two numbers to one kind: long if both are integral, else double.
func widen(l, r value) (value, value) {
	if l.k == kDouble || r.k == kDouble {
		return toDouble(l), toDouble(r)
	}
	l.k, r.k = kLong, kLong
	return l, r
}

func toDouble(v value) value {
	if v.k != kDouble {
		return value{k: kDouble, f: float64(v.i)}
	}
	return v
}

func compareSame(l, r value) int {
	switch l.k {
	case kBool:
		switch {
		case l.b == r.b:
			return 0
		case l.b:
			return 1
		}
		return -1
	case kInt, kLong:
		return cmpOrdered(l.i, r.i)
	case kDouble:
		return javaCompareDouble(l.f, r.f)
	case kString:
		return strings.Compare(l.s, r.s)
	}
	return 0
}

func cmpOrdered[T int64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// javaCompareDouble is Double.compareTo: -0.0 is less than 0.0, NaN equals itself and is
// greater than everything else.
func javaCompareDouble(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	}
	as, bs := math.Signbit(a), math.Signbit(b)
	switch {
	case as == bs:
		return 0
	case as:
		return -1
	}
	return 1
}

// parseAs converts a string property as Java's Boolean.valueOf, Integer.valueOf,
// Long.valueOf or Double.valueOf would.
func parseAs(k kind, s string) (value, error) {
	switch k {
	case kBool:
		return boolValue(strings.EqualFold(s, "true")), nil
	case kInt:
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return null, fmt.Errorf("%q is not an integer", s)
		}
		return value{k: kInt, i: n}, nil
	case kLong:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return null, fmt.Errorf("%q is not a long", s)
		}
		return value{k: kLong, i: n}, nil
	case kDouble:
		f, err := javaParseDouble(s)
		if err != nil {
			return null, err
		}
		return value{k: kDouble, f: f}, nil
	}
	return value{k: kString, s: s}, nil
}

// javaParseDouble approximates Double.valueOf(String): surrounding characters up to ' ' are
// trimmed, a trailing f/F/d/D type suffix is allowed, "NaN" and "Infinity" are spelt as in
// Java, and values out of range become infinity or zero rather than errors.
func javaParseDouble(s string) (float64, error) {
	t := strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	if n := len(t); n > 1 && strings.ContainsRune("fFdD", rune(t[n-1])) && !strings.ContainsAny(t, "xX") {
		t = t[:n-1]
	}
	body := strings.TrimLeft(t, "+-")
	if len(t)-len(body) > 1 || body == "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if c := body[0]; !(isDigit(c) || c == '.') {
		if body != "NaN" && body != "Infinity" {
			return 0, fmt.Errorf("%q is not a number", s)
		}
	}
	if strings.ContainsRune(t, '_') {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return f, nil
}
