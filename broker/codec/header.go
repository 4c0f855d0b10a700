package codec

import (
	"fmt"
	"strconv"
	"strings"
)

// Header is a typed command header (see "Typed headers" in the package comment). It is
// implemented by this package's header types only.
type Header interface {
	decodeExt(r *extReader)
	encodeExt(w extWriter)
}

// DecodeHeader decodes c's ext fields into a header of type H. The error, if any, names the
// first missing or malformed field (a *HeaderError); the other fields are decoded anyway, so
// a handler that must still answer with some of them (a pull's offsets) has them.
func DecodeHeader[H any, P interface {
	*H
	Header
}](c *Command) (H, error) {
	var h H
	r := extReader{ext: c.ExtFields}
	P(&h).decodeExt(&r)
	return h, r.err
}

// EncodeHeader is h as ext fields.
func EncodeHeader(h Header) map[string]string {
	w := extWriter{}
	h.encodeExt(w)
	return w
}

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
