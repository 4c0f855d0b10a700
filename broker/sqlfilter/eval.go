package sqlfilter

import "fmt"

// node is one operator of a parsed expression. eval returns its value for one message: a
// boolean, null (unknown: a missing property somewhere) or, below comparisons, a number or
// string. An error means the Java evaluator would throw, which no message survives.
type node interface {
	eval(get Getter) (value, error)
	height() int
}

// constNode is a literal. Boolean literals and NULL count as boolean expressions (Java's
// BooleanConstantExpression); numbers and strings do not.
type constNode struct{ v value }

func (n constNode) eval(Getter) (value, error) { return n.v, nil }
func (constNode) height() int                  { return 1 }

// propNode is a property: a string, or null when the message does not have it.
type propNode struct{ name string }

func (n propNode) eval(get Getter) (value, error) {
	if s, ok := get(n.name); ok {
		return value{k: kString, s: s}, nil
	}
	return null, nil
}
func (propNode) height() int { return 1 }

// negNode is unary minus: it negates numbers (with Java's wrap-around) and makes anything
// else null.
type negNode struct {
	x node
	h int
}

func (n negNode) eval(get Getter) (value, error) {
	v, err := n.x.eval(get)
	if err != nil {
		return null, err
	}
	switch v.k {
	case kInt:
		return value{k: kInt, i: int64(-int32(v.i))}, nil
	case kLong:
		return value{k: kLong, i: -v.i}, nil
	case kDouble:
		return value{k: kDouble, f: -v.f}, nil
	}
	return null, nil
}
func (n negNode) height() int { return n.h }

type cmpOp uint8

const (
	opLT cmpOp = iota
	opLE
	opGT
	opGE
)

var cmpOpText = [...]string{"<", "<=", ">", ">="}

// cmpNode is <, <=, > or >=: null if either side is null; two strings compare as numbers
// (an error if either is not one); otherwise compare's conversions apply.
type cmpNode struct {
	op   cmpOp
	l, r node
	h    int
}

func (n cmpNode) eval(get Getter) (value, error) {
	l, err := n.l.eval(get)
	if err != nil || l.k == kNull {
		return null, err
	}
	r, err := n.r.eval(get)
	if err != nil || r.k == kNull {
		return null, err
	}
	if l.k == kString && r.k == kString {
		lf, errL := javaParseDouble(l.s)
		rf, errR := javaParseDouble(r.s)
		if errL != nil || errR != nil {
			return null, fmt.Errorf("cannot compare strings %v and %v with %s", l, r, cmpOpText[n.op])
		}
		l, r = value{k: kDouble, f: lf}, value{k: kDouble, f: rf}
	}
	c, err := compare(l, r)
	if err != nil {
		return null, err
	}
	switch n.op {
	case opLT:
		return boolValue(c < 0), nil
	case opLE:
		return boolValue(c <= 0), nil
	case opGT:
		return boolValue(c > 0), nil
	}
	return boolValue(c >= 0), nil
}
func (n cmpNode) height() int { return n.h }

// eqNode is = (and, under a notNode, <>; with r the NULL literal, IS NULL). Its null rule is
// Java's and lopsided: a null left side gives null unless the right is null too (then TRUE),
// a null right side alone gives FALSE.
type eqNode struct {
	l, r node
	h    int
}

func (n eqNode) eval(get Getter) (value, error) {
	l, err := n.l.eval(get)
	if err != nil {
		return null, err
	}
	r, err := n.r.eval(get)
	if err != nil {
		return null, err
	}
	switch {
	case l.k == kNull && r.k == kNull:
		return vTrue, nil
	case l.k == kNull:
		return null, nil
	case r.k == kNull:
		return vFalse, nil
	}
	c, err := compare(l, r)
	if err != nil {
		return null, err
	}
	return boolValue(c == 0), nil
}
func (n eqNode) height() int { return n.h }

// notNode negates a boolean; NOT null is null.
type notNode struct {
	x node
	h int
}

func (n notNode) eval(get Getter) (value, error) {
	v, err := n.x.eval(get)
	if err != nil || v.k != kBool {
		return null, err
	}
	return boolValue(!v.b), nil
}
func (n notNode) height() int { return n.h }

// castNode makes a property usable as a condition (a bare name in AND, OR, NOT or at the top):
// null stays null, anything that is not a boolean is FALSE. Properties are strings, so a
// present one is always FALSE.
type castNode struct {
	x node
	h int
}

func (n castNode) eval(get Getter) (value, error) {
	v, err := n.x.eval(get)
	if err != nil || v.k == kNull {
		return null, err
	}
	return boolValue(v.k == kBool && v.b), nil
}
func (n castNode) height() int { return n.h }

// logicNode is AND or OR over two or more conditions, evaluated left to right with SQL's
// three-valued logic: AND is FALSE at the first FALSE, OR is TRUE at the first TRUE, otherwise
// null if any operand was null. A chain is one node, which is what nesting
// ((a AND b) AND c) gives in Java too.
type logicNode struct {
	and bool
	xs  []node
	h   int
}

func (n logicNode) eval(get Getter) (value, error) {
	sawNull := false
	for _, x := range n.xs {
		v, err := x.eval(get)
		if err != nil {
			return null, err
		}
		switch {
		case v.k != kBool:
			sawNull = true
		case v.b != n.and: // FALSE in an AND, TRUE in an OR decides
			return v, nil
		}
	}
	if sawNull {
		return null, nil
	}
	return boolValue(n.and), nil
}
func (n logicNode) height() int { return n.h }

// inNode is name [NOT] IN ('a', 'b'): null for a missing property.
type inNode struct {
	prop propNode
	set  map[string]bool
	not  bool
}

func (n inNode) eval(get Getter) (value, error) {
	v, _ := n.prop.eval(get)
	if v.k != kString {
		return null, nil
	}
	return boolValue(n.set[v.s] != n.not), nil
}
func (inNode) height() int { return 2 }
