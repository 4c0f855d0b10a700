package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// looseHeader is a JSON header with every field still raw: the general decoder converts each
// as the Java broker's fastjson would (see the package documentation).
type looseHeader struct {
	Code      json.RawMessage            `json:"code"`
	Language  json.RawMessage            `json:"language"`
	Version   json.RawMessage            `json:"version"`
	Opaque    json.RawMessage            `json:"opaque"`
	Flag      json.RawMessage            `json:"flag"`
	Remark    json.RawMessage            `json:"remark"`
	ExtFields map[string]json.RawMessage `json:"extFields"`
}

// decodeJSONHeaderGeneral decodes any JSON header the Java broker accepts (and the fast path
// does not): encoding/json checks the syntax, then each field is converted on its own. Its
// errors name the field at fault.
func decodeJSONHeaderGeneral(hdr []byte) (*Command, error) {
	if t := bytes.TrimLeft(hdr, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("the header is not a JSON object")
	}
	var h looseHeader
	if err := json.Unmarshal(hdr, &h); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, fmt.Errorf("%s is a JSON %s, not an object", typeErr.Field, typeErr.Value)
		}
		return nil, err
	}
	c := &Command{}
	code, err := intField("code", h.Code)
	if err != nil {
		return nil, err
	}
	c.Code, c.WideCode = splitCode(code)
	version, err := intField("version", h.Version)
	if err != nil {
		return nil, err
	}
	opaque, err := intField("opaque", h.Opaque)
	if err != nil {
		return nil, err
	}
	flag, err := intField("flag", h.Flag)
	if err != nil {
		return nil, err
	}
	c.Version, c.Opaque, c.Flag = int32(version), int32(opaque), int32(flag)
	if c.Language, err = languageField(h.Language); err != nil {
		return nil, err
	}
	if c.Remark, _, err = stringValue(h.Remark); err != nil {
		return nil, fmt.Errorf("remark: %v", err)
	}
	if h.ExtFields != nil {
		c.ExtFields = make(map[string]string, len(h.ExtFields))
		for k, raw := range h.ExtFields {
			v, present, err := stringValue(raw)
			if err != nil {
				return nil, fmt.Errorf("extFields[%q]: %v", k, err)
			}
			if present {
				c.ExtFields[k] = v
			}
		}
	}
	return c, nil
}

// intField converts one of the header's Java int fields: a JSON integer, or a string holding
// one (fastjson reads a quoted int), within int32; null or absent is 0.
func intField(name string, raw json.RawMessage) (int64, error) {
	text := string(raw)
	switch {
	case raw == nil || text == "null":
		return 0, nil
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, fmt.Errorf("%s: %v", name, err)
		}
	}
	n, err := strconv.ParseInt(text, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: %s is not a 32-bit integer", name, raw)
	}
	return n, nil
}

// languageField converts the language: a LanguageCode name (any string is kept), or its
// ordinal as Java's enum decoding allows.
func languageField(raw json.RawMessage) (string, error) {
	if len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		n, err := strconv.Atoi(string(raw))
		if err != nil || n < 0 || n >= len(languageNames) {
			return "", fmt.Errorf("language: %s is not a LanguageCode ordinal", raw)
		}
		return languageNames[n], nil
	}
	v, _, err := stringValue(raw)
	if err != nil {
		return "", fmt.Errorf("language: %v", err)
	}
	return v, nil
}

// stringValue converts a value of a Java String field (an ext value, the remark) as fastjson
// does: a string as is; an integer as its literal text; a number with a fraction or exponent
// as Java's BigDecimal prints it; true and false as those words; an object or array as its
// compact JSON text. null or absent is reported with present == false.
func stringValue(raw json.RawMessage) (v string, present bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	switch c := raw[0]; {
	case c == '"':
		err := json.Unmarshal(raw, &v)
		return v, true, err
	case c == 't' || c == 'f':
		return string(raw), true, nil
	case c == '{' || c == '[':
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return "", false, err
		}
		return b.String(), true, nil
	}
	if !bytes.ContainsAny(raw, ".eE") {
		return string(raw), true, nil
	}
	v, err = javaDecimalString(string(raw))
	return v, err == nil, err
}

// maxDecimalChars is the longest number with a fraction or exponent fastjson reads
// (JSONLexerBase.decimalValue refuses longer ones).
const maxDecimalChars = 65535

// javaDecimalString is java.math.BigDecimal's toString of the JSON number lit (which has a
// fraction or an exponent, and valid JSON syntax): the unscaled digits, with a decimal point
// when the scale is positive and the adjusted exponent at least -6, else in scientific
// notation (1e3 is "1E+3", 1.0 is "1.0", 0.0000001 is "1E-7").
func javaDecimalString(lit string) (string, error) {
	if len(lit) > maxDecimalChars {
		return "", fmt.Errorf("a number of %d characters (fastjson reads at most %d)", len(lit), maxDecimalChars)
	}
	neg := strings.HasPrefix(lit, "-")
	mant, exp, _ := strings.Cut(strings.TrimPrefix(lit, "-"), "e")
	if mant == strings.TrimPrefix(lit, "-") {
		mant, exp, _ = strings.Cut(mant, "E")
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	e := int64(0)
	if exp != "" {
		var err error
		if e, err = strconv.ParseInt(exp, 10, 64); err != nil || e < math.MinInt32 || e > math.MaxInt32 {
			return "", fmt.Errorf("exponent of %s is out of BigDecimal's range", lit)
		}
	}
	scale := int64(len(frac)) - e
	if scale < math.MinInt32 || scale > math.MaxInt32 {
		return "", fmt.Errorf("scale of %s is out of BigDecimal's range", lit)
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		digits, neg = "0", false // BigDecimal has no negative zero
	}
	sign := ""
	if neg {
		sign = "-"
	}
	adjusted := -scale + int64(len(digits)-1)
	if scale == 0 {
		return sign + digits, nil
	}
	if scale > 0 && adjusted >= -6 {
		point := int64(len(digits)) - scale
		if point > 0 {
			return sign + digits[:point] + "." + digits[point:], nil
		}
		return sign + "0." + strings.Repeat("0", int(-point)) + digits, nil
	}
	out := sign + digits[:1]
	if len(digits) > 1 {
		out += "." + digits[1:]
	}
	out += "E"
	if adjusted >= 0 {
		out += "+"
	}
	return out + strconv.FormatInt(adjusted, 10), nil
}
