// Package sqlfilter parses and evaluates RocketMQ's SQL92 message selectors, the expressions
// a consumer subscribes with when its selector type is SQL92 ("a > 5 AND region IN ('eu')").
// It owns the grammar of RocketMQ 4.x's SelectorParser.jj (comparisons =, <>, <, <=, >, >=;
// [NOT] BETWEEN; [NOT] IN over string literals; IS [NOT] NULL; AND, OR, NOT; parentheses;
// string, integer, long, double, TRUE, FALSE and NULL literals; property names; -- and /* */
// comments) and the evaluator's semantics: three-valued logic where a missing property is
// null, properties are strings converted towards the other side of a comparison, and an
// evaluation Java would abort with an exception (a property that does not parse as the number
// it is compared with) matches nothing.
//
// Where Java's parser is looser than it should be, this one refuses: tokens after a complete
// expression are an error (Java ignores them), and expressions are bounded in size and depth.
// CONTAINS, STARTSWITH and ENDSWITH (RocketMQ 5) are not supported.
//
// It is pure computation: no I/O, no clock, no randomness, no global state, no panics on any
// input.
package sqlfilter

import (
	"fmt"
	"strings"
)

// Bounds on an expression: its length in bytes and the depth of its tree (nesting of
// parentheses, NOT, minus signs and chained comparisons).
const (
	MaxExpressionBytes = 16 << 10
	MaxDepth           = 64
)

// Getter looks up a message property by name.
type Getter func(name string) (string, bool)

// Expr is a parsed selector. It is immutable and safe to share.
type Expr struct {
	src  string
	root node
}

// String returns the expression as it was given.
func (e *Expr) String() string { return e.src }

// Match reports whether a message with these properties is selected: only a TRUE result
// selects; FALSE, null (unknown) and evaluation errors do not.
func (e *Expr) Match(get Getter) bool {
	v, err := e.root.eval(get)
	return err == nil && v.k == kBool && v.b
}

// Eval is Match with the detail: "true", "false" or "null", or the error that made the
// evaluation fail (such a message is not selected).
func (e *Expr) Eval(get Getter) (string, error) {
	v, err := e.root.eval(get)
	if err != nil {
		return "", err
	}
	switch v.k {
	case kBool:
		if v.b {
			return "true", nil
		}
		return "false", nil
	case kNull:
		return "null", nil
	}
	return "", fmt.Errorf("sqlfilter: expression evaluated to a %s", v.k) // unreachable: Parse checks
}

// Parse parses a selector. Errors are *SyntaxError values pointing at the offending part.
func Parse(src string) (*Expr, error) {
	if len(src) > MaxExpressionBytes {
		return nil, &SyntaxError{Pos: MaxExpressionBytes, Near: "end of expression",
			Msg: fmt.Sprintf("expression of %d bytes, at most %d allowed", len(src), MaxExpressionBytes)}
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	start := p.peek()
	n, err := p.orExpr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tkEOF {
		return nil, p.errorAt(t, "unexpected "+describe(t)+" after a complete expression")
	}
	if n, err = p.asBool(n, start); err != nil {
		return nil, err
	}
	return &Expr{src: src, root: n}, nil
}

type parser struct {
	src   string
	toks  []token
	at    int
	depth int
}

func (p *parser) peek() token { return p.toks[p.at] }

func (p *parser) peek2() token {
	if p.at+1 < len(p.toks) {
		return p.toks[p.at+1]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.at]
	if t.kind != tkEOF {
		p.at++
	}
	return t
}

func (p *parser) is(t token, kind tokenKind, text string) bool {
	return t.kind == kind && t.text == text
}

func (p *parser) accept(kind tokenKind, text string) bool {
	if p.is(p.peek(), kind, text) {
		p.next()
		return true
	}
	return false
}

func (p *parser) expect(kind tokenKind, text string) error {
	if p.accept(kind, text) {
		return nil
	}
	return p.errorAt(p.peek(), fmt.Sprintf("expected %s, found %s", text, describe(p.peek())))
}

func (p *parser) errorAt(t token, msg string) error { return errorAt(p.src, t.pos, msg) }

func describe(t token) string {
	switch t.kind {
	case tkEOF:
		return "the end of the expression"
	case tkString:
		return "string " + value{k: kString, s: t.text}.String()
	case tkKeyword:
		return "keyword " + t.text
	case tkID:
		return "name " + t.text
	}
	return "'" + t.text + "'"
}

// enter counts one level of parser recursion; the caller must call leave.
func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > MaxDepth {
		return p.errorAt(t, fmt.Sprintf("expression nested deeper than %d levels", MaxDepth))
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// grown checks the height of a node just built.
func (p *parser) grown(n node, at token) (node, error) {
	if n.height() > MaxDepth {
		return nil, p.errorAt(at, fmt.Sprintf("expression nested deeper than %d levels", MaxDepth))
	}
	return n, nil
}

func height(ns ...node) int {
	h := 0
	for _, n := range ns {
		h = max(h, n.height())
	}
	return h + 1
}

// isBool reports whether n is a condition (Java's BooleanExpression).
func isBool(n node) bool {
	switch n := n.(type) {
	case constNode:
		return n.v.k == kBool || n.v.k == kNull
	case propNode, negNode:
		return false
	}
	return true
}

// asBool is Java's asBooleanExpression: conditions pass, a bare property is cast, anything
// else (a number, a string, a negation) is refused.
func (p *parser) asBool(n node, at token) (node, error) {
	switch {
	case isBool(n):
		return n, nil
	case isProp(n):
		return p.grown(castNode{x: n, h: height(n)}, at)
	}
	return nil, p.errorAt(at, "expression will not result in a boolean value")
}

func isProp(n node) bool { _, ok := n.(propNode); return ok }

// logic joins conditions with AND or OR, flattening chains.
func (p *parser) logic(and bool, l, r node, lt, rt token) (node, error) {
	l, err := p.asBool(l, lt)
	if err != nil {
		return nil, err
	}
	if r, err = p.asBool(r, rt); err != nil {
		return nil, err
	}
	if ln, ok := l.(logicNode); ok && ln.and == and {
		xs := append(ln.xs[:len(ln.xs):len(ln.xs)], r)
		return p.grown(logicNode{and: and, xs: xs, h: max(ln.h, height(r))}, rt)
	}
	return p.grown(logicNode{and: and, xs: []node{l, r}, h: height(l, r)}, rt)
}

// orExpr: andExpr (OR andExpr)*
func (p *parser) orExpr() (node, error) {
	lt := p.peek()
	l, err := p.andExpr()
	if err != nil {
		return nil, err
	}
	for p.accept(tkKeyword, "OR") {
		rt := p.peek()
		r, err := p.andExpr()
		if err != nil {
			return nil, err
		}
		if l, err = p.logic(false, l, r, lt, rt); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// andExpr: equalityExpr (AND equalityExpr)*
func (p *parser) andExpr() (node, error) {
	lt := p.peek()
	l, err := p.equalityExpr()
	if err != nil {
		return nil, err
	}
	for p.accept(tkKeyword, "AND") {
		rt := p.peek()
		r, err := p.equalityExpr()
		if err != nil {
			return nil, err
		}
		if l, err = p.logic(true, l, r, lt, rt); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// equalityExpr: comparisonExpr ( '=' comparisonExpr | '<>' comparisonExpr | IS NULL | IS NOT NULL )*
func (p *parser) equalityExpr() (node, error) {
	lt := p.peek()
	l, err := p.comparisonExpr()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case p.is(t, tkPunct, "=") || p.is(t, tkPunct, "<>"):
			p.next()
			rt := p.peek()
			r, err := p.comparisonExpr()
			if err != nil {
				return nil, err
			}
			if err := p.checkEqualOperands(l, r, lt, rt); err != nil {
				return nil, err
			}
			l = eqNode{l: l, r: r, h: height(l, r)}
			if t.text == "<>" {
				l = notNode{x: l, h: height(l)}
			}
		case p.is(t, tkKeyword, "IS"):
			p.next()
			not := p.accept(tkKeyword, "NOT")
			if err := p.expect(tkKeyword, "NULL"); err != nil {
				return nil, err
			}
			l = eqNode{l: l, r: constNode{null}, h: height(l)}
			if not {
				l = notNode{x: l, h: height(l)}
			}
		default:
			return l, nil
		}
		if l, err = p.grown(l, t); err != nil {
			return nil, err
		}
	}
}

// checkEqualOperands is Java's checkEqualOperand and checkEqualOperandCompatability: NULL
// cannot be compared with =, and a boolean literal not with another kind of literal.
func (p *parser) checkEqualOperands(l, r node, lt, rt token) error {
	lc, lok := l.(constNode)
	rc, rok := r.(constNode)
	switch {
	case lok && lc.v.k == kNull:
		return p.errorAt(lt, "NULL cannot be compared with = or <>; use IS NULL")
	case rok && rc.v.k == kNull:
		return p.errorAt(rt, "NULL cannot be compared with = or <>; use IS NULL")
	case lok && rok && lc.v.k == kBool && rc.v.k != kBool:
		return p.errorAt(lt, fmt.Sprintf("%v cannot be compared with %v", lc.v, rc.v))
	}
	return nil
}

// checkOrderOperand is Java's checkLessThanOperand: only numbers, properties and negations
// can be ordered, not string or boolean literals or conditions.
func (p *parser) checkOrderOperand(n node, t token) error {
	if c, ok := n.(constNode); ok {
		if c.v.numeric() {
			return nil
		}
		return p.errorAt(t, fmt.Sprintf("%v cannot be compared with <, <=, > or >= (only numbers can)", c.v))
	}
	if isBool(n) {
		return p.errorAt(t, "a condition cannot be compared with <, <=, > or >=")
	}
	return nil
}

func (p *parser) order(op cmpOp, l, r node, lt, rt token) (node, error) {
	if err := p.checkOrderOperand(l, lt); err != nil {
		return nil, err
	}
	if err := p.checkOrderOperand(r, rt); err != nil {
		return nil, err
	}
	return cmpNode{op: op, l: l, r: r, h: height(l, r)}, nil
}

var orderOps = map[string]cmpOp{"<": opLT, "<=": opLE, ">": opGT, ">=": opGE}

// comparisonExpr: unaryExpr ( ('>'|'>='|'<'|'<=') unaryExpr | [NOT] BETWEEN unaryExpr AND unaryExpr
// | [NOT] IN '(' string (',' string)* ')' )*
func (p *parser) comparisonExpr() (node, error) {
	lt := p.peek()
	l, err := p.unaryExpr()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		not := false
		if p.is(t, tkKeyword, "NOT") {
			t2 := p.peek2()
			if !p.is(t2, tkKeyword, "BETWEEN") && !p.is(t2, tkKeyword, "IN") {
				return l, nil
			}
			p.next()
			not = true
		}
		op := p.peek()
		orderOp, isOrder := orderOps[op.text]
		switch {
		case op.kind == tkPunct && isOrder:
			p.next()
			rt := p.peek()
			r, err := p.unaryExpr()
			if err != nil {
				return nil, err
			}
			if l, err = p.order(orderOp, l, r, lt, rt); err != nil {
				return nil, err
			}
		case p.is(op, tkKeyword, "BETWEEN"):
			p.next()
			if l, err = p.between(l, lt, op, not); err != nil {
				return nil, err
			}
		case p.is(op, tkKeyword, "IN"):
			p.next()
			if l, err = p.in(l, lt, not); err != nil {
				return nil, err
			}
		default:
			return l, nil // not NOT: NOT is only taken before BETWEEN or IN
		}
		if l, err = p.grown(l, t); err != nil {
			return nil, err
		}
	}
}

// between builds v [NOT] BETWEEN lo AND hi as Java does: (v >= lo AND v <= hi), or
// (v < lo OR v > hi); two literal bounds must be in order.
func (p *parser) between(v node, vt, at token, not bool) (node, error) {
	lot := p.peek()
	lo, err := p.unaryExpr()
	if err != nil {
		return nil, err
	}
	if err := p.expect(tkKeyword, "AND"); err != nil {
		return nil, err
	}
	hit := p.peek()
	hi, err := p.unaryExpr()
	if err != nil {
		return nil, err
	}
	loC, lok := lo.(constNode)
	hiC, hok := hi.(constNode)
	if !not && lok && hok {
		if loC.v.k == kNull || hiC.v.k == kNull {
			return nil, p.errorAt(at, "the bounds of BETWEEN cannot be NULL")
		}
		if c, err := compare(hiC.v, loC.v); err == nil && c < 0 {
			return nil, p.errorAt(at, fmt.Sprintf("BETWEEN %v AND %v: the low bound is above the high bound", loC.v, hiC.v))
		}
	}
	if not {
		a, err := p.order(opLT, v, lo, vt, lot)
		if err != nil {
			return nil, err
		}
		b, err := p.order(opGT, v, hi, vt, hit)
		if err != nil {
			return nil, err
		}
		return p.logic(false, a, b, vt, vt)
	}
	a, err := p.order(opGE, v, lo, vt, lot)
	if err != nil {
		return nil, err
	}
	b, err := p.order(opLE, v, hi, vt, hit)
	if err != nil {
		return nil, err
	}
	return p.logic(true, a, b, vt, vt)
}

// in builds name [NOT] IN ('a', ...): the left side must be a property, the list string
// literals.
func (p *parser) in(l node, lt token, not bool) (node, error) {
	prop, ok := l.(propNode)
	if !ok {
		return nil, p.errorAt(lt, "IN needs a property name on its left")
	}
	if err := p.expect(tkPunct, "("); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for {
		t := p.next()
		if t.kind != tkString {
			return nil, p.errorAt(t, "expected a string literal in the IN list, found "+describe(t))
		}
		set[t.text] = true
		if p.accept(tkPunct, ")") {
			return inNode{prop: prop, set: set, not: not}, nil
		}
		if err := p.expect(tkPunct, ","); err != nil {
			return nil, err
		}
	}
}

// unaryExpr: '+' unaryExpr | '-' unaryExpr | NOT unaryExpr | primaryExpr
func (p *parser) unaryExpr() (node, error) {
	t := p.peek()
	if err := p.enter(t); err != nil {
		return nil, err
	}
	defer p.leave()
	switch {
	case p.is(t, tkPunct, "+"):
		p.next()
		return p.unaryExpr()
	case p.is(t, tkPunct, "-"):
		p.next()
		x, err := p.unaryExpr()
		if err != nil {
			return nil, err
		}
		return p.grown(negNode{x: x, h: height(x)}, t)
	case p.is(t, tkKeyword, "NOT"):
		p.next()
		xt := p.peek()
		x, err := p.unaryExpr()
		if err != nil {
			return nil, err
		}
		if x, err = p.asBool(x, xt); err != nil {
			return nil, err
		}
		return p.grown(notNode{x: x, h: height(x)}, t)
	}
	return p.primaryExpr()
}

// primaryExpr: literal | name | '(' orExpr ')'
func (p *parser) primaryExpr() (node, error) {
	t := p.next()
	switch t.kind {
	case tkID:
		return propNode{name: t.text}, nil
	case tkString:
		return constNode{value{k: kString, s: t.text}}, nil
	case tkDecimal:
		return p.decimal(t)
	case tkFloat:
		return p.float(t)
	case tkKeyword:
		switch t.text {
		case "TRUE":
			return constNode{vTrue}, nil
		case "FALSE":
			return constNode{vFalse}, nil
		case "NULL":
			return constNode{null}, nil
		}
	case tkPunct:
		if t.text == "(" {
			n, err := p.orExpr()
			if err != nil {
				return nil, err
			}
			return n, p.expect(tkPunct, ")")
		}
	}
	return nil, p.errorAt(t, "expected a name, a literal or '(', found "+describe(t))
}

// decimal is ConstantExpression.createFromDecimal: an integer if it fits in 32 bits, else a
// long; more than 64 bits is an error.
func (p *parser) decimal(t token) (node, error) {
	text := strings.TrimRight(t.text, "lL")
	v, err := parseAs(kLong, text)
	if err != nil {
		return nil, p.errorAt(t, "integer literal "+t.text+" does not fit in 64 bits")
	}
	if int64(int32(v.i)) == v.i {
		v.k = kInt
	}
	return constNode{v}, nil
}

// float is ConstantExpression.createFloat, which refuses infinity and, since a literal has no
// sign, anything below Double.MIN_VALUE: 0.0 included.
func (p *parser) float(t token) (node, error) {
	f, err := javaParseDouble(t.text)
	switch {
	case err != nil:
		return nil, p.errorAt(t, "bad number "+t.text)
	case f > 1.7976931348623157e308:
		return nil, p.errorAt(t, t.text+" is greater than the largest double")
	case f < 4.9e-324:
		return nil, p.errorAt(t, t.text+" is less than the smallest positive double (RocketMQ refuses 0.0; write 0)")
	}
	return constNode{value{k: kDouble, f: f}}, nil
}
