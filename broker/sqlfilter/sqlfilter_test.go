package sqlfilter

import (
	"errors"
	"strings"
	"testing"
)

// props builds a Getter from "k=v" pairs.
func props(kvs ...string) Getter {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// evalCase is one expression evaluated against one message; want is "true", "false",
// "null" or "error" (the evaluation throws in Java, so the message does not match).
type evalCase struct {
	expr  string
	props []string
	want  string
}

func runEval(t *testing.T, cases []evalCase) {
	t.Helper()
	for _, c := range cases {
		e, err := Parse(c.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.expr, err)
			continue
		}
		got, err := e.Eval(props(c.props...))
		if err != nil {
			got = "error"
		}
		if got != c.want {
			t.Errorf("%q with %v = %s (err %v), want %s", c.expr, c.props, got, err, c.want)
		}
		if m := e.Match(props(c.props...)); m != (c.want == "true") {
			t.Errorf("%q with %v: Match = %v, want %v", c.expr, c.props, m, !m)
		}
	}
}

// TestRocketMQExpressionTest replays the cases of RocketMQ 4.9.8's
// filter/src/test/java/org/apache/rocketmq/filter/ExpressionTest.java (properties as the strings
// a broker sees; Java's eval helper treats null as false, here it is spelt out).
func TestRocketMQExpressionTest(t *testing.T) {
	const (
		and        = "a=3 and b<>4 And c>5 AND d<=4"
		or         = "a=3 or b<>4 Or c>5 OR d<=4"
		in         = "a in ('3', '4', '5')"
		notIn      = "a not in ('3', '4', '5')"
		between    = "a between 2 and 10"
		notBetween = "a not between 2 and 10"
		isNull     = "a is null"
		isNotNull  = "a is not null"
		equal      = "a is not null and a='hello'"
		boolean    = "a=TRUE OR b=FALSE"
		nullOr     = "a is null OR a='hello'"
		strHasStr  = "TAGS is not null and TAGS='''''tag'''''"
	)
	runEval(t, []evalCase{
		{strHasStr, []string{"TAGS=''tag''"}, "true"},
		// testEvaluate_stringCompare: strings that are not numbers cannot be ordered.
		{"a between up and low", []string{"a=3.14"}, "null"},
		{"a between up and low", []string{"a=3.14", "up=up", "low=low"}, "error"},
		{"key is not null and key between 0 and 100", []string{"key=con"}, "error"},
		{"a between 0 and 100", []string{"a=abc"}, "error"},
		{"a=b", []string{"a=3.14", "b=3.14"}, "true"},
		{"a<>b", []string{"a=3.14", "b=3.14"}, "false"},
		{"a<>b", []string{"a=3.14", "b=3.141"}, "true"},
		{"a > 3.1E10", []string{"a=3.1415E10"}, "true"},
		{"a > 3.14", []string{"a=3.1415"}, "true"},
		{"a > b", []string{"a=10", "b=20"}, "false"},
		{"a > b", []string{"b=10", "a=20"}, "true"},
		{nullOr, nil, "true"},
		{nullOr, []string{"a=hello"}, "true"},
		{nullOr, []string{"a=abc"}, "false"},
		{boolean, []string{"a=true", "b=false"}, "true"},
		{boolean, []string{"a=false", "b=true"}, "false"},
		{equal, []string{"a=hello"}, "true"},
		{equal, nil, "false"},
		{and, []string{"a=3", "b=5", "c=6", "d=1"}, "true"},
		{and, []string{"a=4", "b=5", "c=6", "d=1"}, "false"},
		{or, []string{"a=3"}, "true"},
		{or, []string{"a=4", "b=5"}, "true"},
		{or, []string{"a=4", "b=4", "c=6"}, "true"},
		{or, []string{"a=4", "b=4", "c=3", "d=2"}, "true"},
		{or, []string{"a=4", "b=4", "c=3", "d=10"}, "false"},
		{in, []string{"a=3"}, "true"},
		{in, []string{"a=4"}, "true"},
		{in, []string{"a=5"}, "true"},
		{in, []string{"a=8"}, "false"},
		{notIn, []string{"a=8"}, "true"},
		{notIn, []string{"a=3"}, "false"},
		{notIn, []string{"a=5"}, "false"},
		{between, []string{"a=2"}, "true"},
		{between, []string{"a=10"}, "true"},
		{between, []string{"a=3"}, "true"},
		{between, []string{"a=1"}, "false"},
		{between, []string{"a=11"}, "false"},
		{notBetween, []string{"a=1"}, "true"},
		{notBetween, []string{"a=11"}, "true"},
		{notBetween, []string{"a=2"}, "false"},
		{notBetween, []string{"a=10"}, "false"},
		{notBetween, []string{"a=3"}, "false"},
		{isNull, []string{"abc=2"}, "true"},
		{isNull, []string{"a=2"}, "false"},
		{isNotNull, []string{"a=2"}, "true"},
		{isNotNull, []string{"abc=2"}, "false"},
	})
}

// TestSemantics pins the corners of Java's evaluator that a port gets wrong by default.
func TestSemantics(t *testing.T) {
	runEval(t, []evalCase{
		// Missing properties are null, and null is not a match, negated or not.
		{"a > 5", nil, "null"},
		{"NOT (a > 5)", nil, "null"},
		{"a <> 5", nil, "null"},
		{"a = 5 OR b = 1", []string{"b=1"}, "true"},
		{"a = 5 OR b = 1", []string{"b=2"}, "null"},
		{"a = 5 AND b = 1", []string{"b=2"}, "false"},
		{"a = 5 AND b = 1", []string{"b=1"}, "null"},
		{"a IN ('x')", nil, "null"},
		{"a NOT IN ('x')", nil, "null"},
		{"a BETWEEN 1 AND 3", nil, "null"},
		// = is lopsided about nulls (ComparisonExpression.doCreateEqual).
		{"a = b", []string{"a=1"}, "false"},
		{"a <> b", []string{"a=1"}, "true"},
		{"a = b", []string{"b=1"}, "null"},
		{"a = b", nil, "true"},
		// A property compared with a number converts to the literal's type; if it does not
		// parse, Java throws and the message is dropped, even under NOT or OR.
		{"a = 5", []string{"a=5"}, "true"},
		{"a = 5", []string{"a=+5"}, "true"},
		{"a = 5", []string{"a=5.0"}, "error"},
		{"a <> 5", []string{"a=abc"}, "error"},
		{"a = 5 OR TRUE", []string{"a=abc"}, "error"},
		{"TRUE OR a = 5", []string{"a=abc"}, "true"},
		{"a > 5", []string{"a=10000000000"}, "error"}, // 5 is an Integer: Integer.valueOf fails
		{"a > 5L", []string{"a=10000000000"}, "error"},
		{"a > 5000000000", []string{"a=10000000000"}, "true"}, // a Long literal
		{"a > 5.0", []string{"a=10000000000"}, "true"},
		{"a = 5.0", []string{"a=5"}, "true"},
		{"a > 1.5", []string{"a= 2 "}, "true"}, // Double.valueOf trims
		{"a > 1.5", []string{"a=2d"}, "true"},
		{"a > 1.5", []string{"a=NaN"}, "true"}, // Double.compareTo: NaN is above everything
		{"a > 1.5", []string{"a=nan"}, "error"},
		{"a > 1.5", []string{"a=Infinity"}, "true"},
		{"a >= -3", []string{"a=-3"}, "true"},
		{"a < -2147483648", []string{"a=-2147483649"}, "true"},
		// Two properties ordered: both must be numbers.
		{"a < b", []string{"a=2", "b=10"}, "true"},
		{"a < b", []string{"a=x", "b=10"}, "error"},
		{"a = b", []string{"a=2", "b=2.0"}, "false"}, // equal as strings only
		// Booleans: a string property is converted with Boolean.valueOf.
		{"a = TRUE", []string{"a=TRUE"}, "true"},
		{"a = FALSE", []string{"a=anything"}, "true"},
		{"TRUE = a", []string{"a=true"}, "error"}, // Java: ClassCastException
		{"(a = 1) = TRUE", []string{"a=1"}, "true"},
		{"1 = TRUE", nil, "false"},
		// A bare property is a condition that is never TRUE (properties are strings).
		{"a", []string{"a=true"}, "false"},
		{"a", nil, "null"},
		{"NOT a", []string{"a=true"}, "true"},
		// NOT binds tighter than comparisons, as in Java's grammar.
		{"NOT a = 1", []string{"a=1"}, "false"},
		{"NOT (a = 1)", []string{"a=2"}, "true"},
		// Literals and constant conditions.
		{"TRUE", nil, "true"},
		{"FALSE", nil, "false"},
		{"NULL", nil, "null"},
		{"NULL IS NULL", nil, "true"},
		{"1 < 2", nil, "true"},
		{"2 > 1.5", nil, "true"},
		{"'a' = 'a'", nil, "true"},
		{"-a = 1", []string{"a=-1"}, "null"}, // minus of a string is null
		{"a = --5", []string{"a=5"}, "true"},
		{"a = +5", []string{"a=5"}, "true"},
		// Strings, escapes, comments, case.
		{"a = 'it''s'", []string{"a=it's"}, "true"},
		{"a = ''", []string{"a="}, "true"},
		{"a IN ('x', 'y', 'z', 'w', 'v')", []string{"a=v"}, "true"},
		{"a = 1 -- a comment\n AND b = 2", []string{"a=1", "b=2"}, "true"},
		{"a = 1 /* and b = 3 */ AND b = 2", []string{"a=1", "b=2"}, "true"},
		{"A = 1 and a = 2", []string{"A=1", "a=2"}, "true"},
		{"TAGS = 'TagA' AND $x_1 IS NOT NULL", []string{"TAGS=TagA", "$x_1=0"}, "true"},
		{"a <= now", []string{"a=1", "now=2"}, "true"},
		// Chained comparisons nest to the left.
		{"a = 1 = TRUE", []string{"a=1"}, "true"},
		{"a > 1 = FALSE", []string{"a=0"}, "true"},
		{"a IS NULL IS NULL", nil, "false"},
	})
}

// TestParseErrors covers RocketMQ's ParserTest invalid cases and the refusals Java makes while
// building the tree, plus Sluice's own (trailing tokens, bounds).
func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{"a and between 2 and 10", "expected a name, a literal or '('"}, // ParserTest invalidExpression
		{" a between 10 and 0", "low bound is above the high bound"},    // ParserTest illegalBetween
		{"a > 100000000000000000000000", "does not fit in 64 bits"},     // ParserTest decimalOverFlow
		{"a > 1" + strings.Repeat("1", 400) + ".5", "greater than the largest double"},
		{"a > 0.0", "less than the smallest positive double"},
		{"", "expected a name, a literal or '('"},
		{"   ", "expected a name, a literal or '('"},
		{"a >", "found the end of the expression"},
		{"a = 1 b = 2", "after a complete expression"},
		{"a = 1)", "after a complete expression"},
		{"(a = 1", "expected )"},
		{"a = 'open", "unterminated string literal"},
		{"a = 1 /* open", "unterminated comment"},
		{"a != 1", "unexpected character '!'"},
		{"a == 1", "expected a name, a literal or '('"},
		{"a.b = 1", "unexpected character '.'"},
		{"a = 1 --no newline", "after a complete expression"},
		{"5", "will not result in a boolean"},
		{"'x'", "will not result in a boolean"},
		{"a = 1 AND 5", "will not result in a boolean"},
		{"NOT 5", "will not result in a boolean"},
		{"-a", "will not result in a boolean"},
		{"a = NULL", "NULL cannot be compared"},
		{"NULL = a", "NULL cannot be compared"},
		{"TRUE = 1", "cannot be compared with 1"},
		{"a > 'x'", "cannot be compared with <"},
		{"a > TRUE", "cannot be compared with <"},
		{"a > (b = 1)", "a condition cannot be compared"},
		{"a BETWEEN 'x' AND 'y'", "cannot be compared with <"},
		{"a BETWEEN NULL AND 1", "cannot be NULL"},
		{"a IN (1, 2)", "expected a string literal"},
		{"a IN ()", "expected a string literal"},
		{"'x' IN ('x')", "IN needs a property name"},
		{"a IS 5", "expected NULL"},
		{"a = 05", "after a complete expression"},
		{"a = 0L", "after a complete expression"},
		{"a NOT LIKE 'x'", "after a complete expression"},
		{strings.Repeat("(", MaxDepth+1) + "a" + strings.Repeat(")", MaxDepth+1), "nested deeper"},
		{strings.Repeat("NOT ", MaxDepth+1) + "a", "nested deeper"},
		{"a" + strings.Repeat(" = TRUE", MaxDepth+1), "nested deeper"},
		{"a = '" + strings.Repeat("x", MaxExpressionBytes) + "'", "at most"},
	} {
		_, err := Parse(c.expr)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%.40q) = %v, want a SyntaxError", c.expr, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%.40q) = %v, want it to say %q", c.expr, err, c.want)
		}
	}
}

// TestLongChains: AND and OR chains are flat, so long lists of alternatives parse within the
// depth bound.
func TestLongChains(t *testing.T) {
	var terms []string
	for i := range 1000 {
		terms = append(terms, "a = "+string(rune('0'+i%10)))
	}
	e, err := Parse(strings.Join(terms, " OR "))
	if err != nil {
		t.Fatal(err)
	}
	if !e.Match(props("a=7")) || e.Match(props("a=x")) {
		t.Fatal("long OR chain evaluated wrongly")
	}
}

// FuzzParse: no input panics the parser or the evaluator, errors are SyntaxErrors, and an
// accepted expression evaluates to a condition.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a > 5", "a between 2 and 10 AND b not in ('x', 'y')", "a is not null or (b = TRUE)",
		"NOT a = -5L", "a > 3.1E10 -- c\n", "/* x */ a <> 'it''s'", "a = 1 = TRUE IS NULL",
		"((((a))))", "-.5e-3 < a", "a IN ('')",
	} {
		f.Add(s, "5")
	}
	f.Fuzz(func(t *testing.T, expr, val string) {
		e, err := Parse(expr)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): %v is not a SyntaxError", expr, err)
			}
			return
		}
		for _, get := range []Getter{props(), func(string) (string, bool) { return val, true }} {
			if r, err := e.Eval(get); err == nil && r != "true" && r != "false" && r != "null" {
				t.Fatalf("%q evaluated to %q", expr, r)
			}
			e.Match(get)
		}
	})
}
