package codec

import (
	"fmt"
	"strconv"
	"strings"
)

// Header is a typed command header (see "Typed headers" in the package comment). It is
// implemented by this package's header types only.
type Header interface {
	// fields lists the header's fields to f, in the order they are decoded (the first bad
	// one is the error).
	fields(f extFields)
}

// extFields is one direction of a header's field list: fieldDecoder reads each field from the
// ext fields into the header, fieldEncoder writes it. Each kind of field is read by the
// extReader method of its name (strIf reads as str) and written by extWriter's (requiredStr
// as str; the integers as int).
type extFields interface {
	str(key string, p *string)
	requiredStr(key string, p *string)
	// strIf is a string field written only when it is not empty.
	strIf(key string, p *string)
	int(key string, p *int64)
	intOr(key string, p *int64, def int64)
	optionalInt(key string, p *int64, def int64)
	// int32Or is intOr for a field that holds the low 32 bits of what was sent.
	int32Or(key string, p *int32, def int64)
	bool(key string, p *bool)
	// custom is a field, or a few, with rules of their own.
	custom(decode func(r *extReader), encode func(w extWriter))
}

type fieldDecoder struct{ r *extReader }

func (d fieldDecoder) str(key string, p *string)         { *p = d.r.str(key) }
func (d fieldDecoder) requiredStr(key string, p *string) { *p = d.r.requiredStr(key) }
func (d fieldDecoder) strIf(key string, p *string)       { *p = d.r.str(key) }
func (d fieldDecoder) int(key string, p *int64)          { *p = d.r.int(key) }
func (d fieldDecoder) intOr(key string, p *int64, def int64) {
	*p = d.r.intOr(key, def)
}
func (d fieldDecoder) optionalInt(key string, p *int64, def int64) {
	*p = d.r.optionalInt(key, def)
}
func (d fieldDecoder) int32Or(key string, p *int32, def int64) {
	*p = int32(d.r.intOr(key, def))
}
func (d fieldDecoder) bool(key string, p *bool)                          { *p = d.r.bool(key) }
func (d fieldDecoder) custom(decode func(*extReader), _ func(extWriter)) { decode(d.r) }

type fieldEncoder struct{ w extWriter }

func (e fieldEncoder) str(key string, p *string)                         { e.w.str(key, *p) }
func (e fieldEncoder) requiredStr(key string, p *string)                 { e.w.str(key, *p) }
func (e fieldEncoder) strIf(key string, p *string)                       { e.w.strIf(key, *p) }
func (e fieldEncoder) int(key string, p *int64)                          { e.w.int(key, *p) }
func (e fieldEncoder) intOr(key string, p *int64, _ int64)               { e.w.int(key, *p) }
func (e fieldEncoder) optionalInt(key string, p *int64, _ int64)         { e.w.int(key, *p) }
func (e fieldEncoder) int32Or(key string, p *int32, _ int64)             { e.w.int(key, int64(*p)) }
func (e fieldEncoder) bool(key string, p *bool)                          { e.w.bool(key, *p) }
func (e fieldEncoder) custom(_ func(*extReader), encode func(extWriter)) { encode(e.w) }

// DecodeHeader decodes c's ext fields into a header of type H. The error, if any, names the
// first missing or malformed field (a *HeaderError); the other fields are decoded anyway, so
// a handler that must still answer with some of them (a pull's offsets) has them.
func DecodeHeader[H any, P interface {
	*H
	Header
}](c *Command) (H, error) {
	var h H
	r := extReader{ext: c.ExtFields}
	P(&h).fields(fieldDecoder{&r})
	return h, r.err
}

// EncodeHeader is h as ext fields.
func EncodeHeader(h Header) map[string]string {
	var n fieldCounter
	h.fields(&n)
	w := make(extWriter, int(n)) // sized up front: growing a map rehashes it
	h.fields(fieldEncoder{w})
	return w
}

// fieldCounter counts a header's fields (a custom one as two), to size its ext-field map.
type fieldCounter int

func (n *fieldCounter) str(string, *string)                        { *n++ }
func (n *fieldCounter) requiredStr(string, *string)                { *n++ }
func (n *fieldCounter) strIf(string, *string)                      { *n++ }
func (n *fieldCounter) int(string, *int64)                         { *n++ }
func (n *fieldCounter) intOr(string, *int64, int64)                { *n++ }
func (n *fieldCounter) optionalInt(string, *int64, int64)          { *n++ }
func (n *fieldCounter) int32Or(string, *int32, int64)              { *n++ }
func (n *fieldCounter) bool(string, *bool)                         { *n++ }
func (n *fieldCounter) custom(func(*extReader), func(w extWriter)) { *n += 2 }

// HeaderError is a header field that is missing or does not hold what its type needs.
type HeaderError struct {
	// Field is the field's name on the wire; Alias, if not empty, the long name of a one-letter
	// SEND_MESSAGE_V2 field.
	Field, Alias string
	// Value is the value received ("" when Missing).
	Value   string
	Missing bool
	// Want says what the value must be ("an integer").
	Want string
}

func (e *HeaderError) Error() string {
	name := strconv.Quote(e.Field)
	if e.Alias != "" {
		name += " (" + e.Alias + ")"
	}
	if e.Missing {
		return "missing header field " + name
	}
	return fmt.Sprintf("header field %s: %q is not %s", name, e.Value, e.Want)
}

// extReader reads ext fields, keeping the first error.
type extReader struct {
	ext map[string]string
	// alias maps a one-letter name to its long name, for errors (SEND_MESSAGE_V2).
	alias map[string]string
	err   error
}

func (r *extReader) fail(key, value string, missing bool, want string) {
	if r.err == nil {
		r.err = &HeaderError{Field: key, Alias: r.alias[key], Value: value, Missing: missing, Want: want}
	}
}

// str is a string field; missing is "". (Like every read of a field named "", it reads as
// missing: no header has a field without a name.)
func (r *extReader) str(key string) string { return r.ext[key] }

// requiredStr is a string field that must be present and not empty.
func (r *extReader) requiredStr(key string) string {
	v := r.ext[key]
	if v == "" {
		r.fail(key, "", true, "")
	}
	return v
}

// int is a required integer field: missing or malformed is an error (0 is returned).
func (r *extReader) int(key string) int64 {
	v, ok := r.ext[key]
	if !ok {
		r.fail(key, "", true, "")
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.fail(key, v, false, "an integer")
		return 0
	}
	return n
}

// intOr is an integer field read leniently: missing or malformed is def.
func (r *extReader) intOr(key string, def int64) int64 {
	n, err := strconv.ParseInt(r.ext[key], 10, 64)
	if err != nil {
		return def
	}
	return n
}

// optionalInt is an integer field that may be missing or empty (def), but not malformed.
func (r *extReader) optionalInt(key string, def int64) int64 {
	v := r.ext[key]
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.fail(key, v, false, "an integer")
		return def
	}
	return n
}

// bool is a boolean field as Java's Boolean.parseBoolean reads it: "true" in any case is true,
// anything else (missing included) false.
func (r *extReader) bool(key string) bool { return strings.EqualFold(r.ext[key], "true") }

// extWriter writes ext fields, every value a string. A field named "" is not written (a
// header kind that shares another's names but leaves some out: ReplyPushHeader).
type extWriter map[string]string

func (w extWriter) str(key, v string) {
	if key != "" {
		w[key] = v
	}
}
func (w extWriter) int(key string, v int64) { w.str(key, strconv.FormatInt(v, 10)) }
func (w extWriter) bool(key string, v bool) { w.str(key, strconv.FormatBool(v)) }

// strIf writes a string field only when it is not empty.
func (w extWriter) strIf(key, v string) {
	if v != "" {
		w[key] = v
	}
}
