// Package codec owns the RocketMQ 4.x remoting wire format: the length-prefixed frame, the JSON
// and binary (ROCKETMQ) command headers, and the stored message record that pull responses
// carry. It is pure: no I/O beyond reading a frame from an io.Reader, no global state.
//
// # What the header decoder accepts, and why
//
// Sluice reads headers as the Java broker does, because clients other than the Go one are
// written against it: the Java broker decodes a JSON header with fastjson into a
// RemotingCommand whose extFields is a HashMap<String,String>, and a binary (ROCKETMQ) header
// field by field. A header the Java broker accepts must not cost a client its connection
// here. So, in a JSON header:
//
//   - Fields come in any order; unknown fields of any shape are ignored (Java writes
//     serializeTypeCurrentRPC, future versions may add more); remark, flag, language, version
//     and extFields may be missing or null.
//   - An ext value may be a string, or what fastjson turns into one: an integer keeps its
//     literal text ("queueId":1 is "1", and a long beyond int64 stays as written); a number
//     with a fraction or an exponent is printed as Java's BigDecimal.toString prints it (1.0
//     is "1.0", 1e3 is "1E+3", 0.0000001 is "1E-7"); true and false are "true" and "false";
//     an object or array is its compact JSON text. The Node.js client ali-ons writes queueId,
//     sysFlag, bornTimestamp and offsets as numbers and unitMode and batch as booleans.
//   - A null ext value is absent: Java's map holds the key with null, and every header
//     decoder there reads it with get(), which cannot tell the two apart.
//   - Strings may hold any escape JSON allows and any UTF-8; raw invalid UTF-8 becomes U+FFFD,
//     as Java's UTF-8 decoding of the header bytes makes it.
//   - code, version, opaque and flag are Java ints: a JSON integer within int32, or a string
//     holding one (fastjson reads a quoted int), or null for 0. A code that does not fit in
//     16 bits decodes as CodeOutOfRange with its value in WideCode, so the node answers it
//     REQUEST_CODE_NOT_SUPPORTED, as Java answers a code it has no processor for. language
//     may be any string (nothing depends on it) or a LanguageCode ordinal.
//
// A binary header holds strings only and 16-bit code and version, as Java writes it; an
// unknown language byte reads as OTHER.
//
// Rejected, with an error naming the field, and the connection closed as Java's decoder
// exception closes it: a header that is not one JSON object (null, an array, trailing text),
// an int field that is not an integer within int32, extFields that is not an object, a
// number BigDecimal cannot hold. Deliberately stricter than fastjson, since no RocketMQ client
// writes them: its non-standard syntax (single quotes, unquoted names, repeated commas,
// \x escapes, number suffixes such as 1L) and int fields written as fractions (fastjson
// truncates 10.5 to 10).
//
// Decoding has a fast path for the shapes clients send (strings, integers, booleans and null
// as ext values) that falls back, never fails, to the general decoder for anything else;
// FuzzJSONHeaderFastPath checks that the two agree. What Sluice writes is narrower than what
// it reads: ext values are always JSON strings, because the Go client fails on anything else.
//
// # Typed headers
//
// Every request and response kind that carries ext fields has a header type here (header_*.go,
// e.g. SendHeader, PullHeader, OffsetResponseHeader), as RocketMQ has a CommandCustomHeader per
// kind: a node decodes a request's header once, when it starts serving it (DecodeHeader,
// DecodeSendHeader for the long and the V2 one-letter names alike), and works on the typed
// value; whoever writes a command (a node answering, a client asking) encodes it from the same
// type (EncodeHeader, Command.SetHeader). No code outside this package looks an ext field up
// by name. Decoding is lenient, as the Java broker's is: unknown fields are ignored, and each
// field documents what a missing or malformed value means (a *HeaderError naming it, or a
// default). Encoding is strict: strings only, integers in decimal, booleans "true" or "false".
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"unicode/utf8"
)

// Serialize types carried in the top byte of the header-length word.
const (
	SerializeJSON     = 0
	SerializeRocketMQ = 1
)

// Flag bits of a command.
const (
	FlagResponse = 1 << 0
	FlagOneway   = 1 << 1
)

// DefaultMaxFrameBytes bounds a frame (length word excluded). A frame larger than this is a
// protocol error: the connection that sent it is closed.
const DefaultMaxFrameBytes = 16 << 20

// ErrFrameTooLarge is returned for a frame whose declared length exceeds the limit.
var ErrFrameTooLarge = errors.New("frame too large")

// ErrBadFrame wraps every structural decode failure.
var ErrBadFrame = errors.New("bad frame")

// Command is one remoting command: a request or a response.
type Command struct {
	// Code is the request or response code. Every RocketMQ code fits in 16 bits, but a JSON
	// header may carry any 32-bit one (Java reads it into an int): such a code is decoded as
	// CodeOutOfRange with its value in WideCode, so that a node answers it "not supported",
	// as Java does, instead of the connection being dropped.
	Code int16
	// WideCode is the header's code when it does not fit in Code, 0 otherwise.
	WideCode int32
	Language string
	// Version is the sender's MQVersion ordinal: a Java int in a JSON header, 16 bits in a
	// binary one.
	Version int32
	Opaque  int32
	Flag    int32
	Remark  string
	// ExtFields is the header's fields. A command's map is never changed in place once the
	// command is built or decoded (SetHeader replaces it), so that commands may share one
	// (Transfer).
	ExtFields map[string]string
	Body      []byte
}

// WireCode is the code as the header carried it.
func (c *Command) WireCode() int32 {
	if c.WideCode != 0 {
		return c.WideCode
	}
	return int32(c.Code)
}

// IsResponse reports whether the response bit is set.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// Ext returns an ext field as received, "" if absent: for tests and diagnostics. Code that
// serves or sends a command reads and writes its header through a typed Header (DecodeHeader,
// EncodeHeader, SetHeader).
func (c *Command) Ext(key string) string { return c.ExtFields[key] }

// SetHeader replaces c's ext fields with h.
func (c *Command) SetHeader(h Header) { c.ExtFields = EncodeHeader(h) }

// setExt sets an ext field, allocating the map if needed.
func (c *Command) setExt(key, value string) {
	if c.ExtFields == nil {
		c.ExtFields = make(map[string]string, 8)
	}
	c.ExtFields[key] = value
}

// NewRequest builds a request with the Go client's language and version markers.
func NewRequest(code int16, ext map[string]string, body []byte) *Command {
	return &Command{Code: code, Language: "GO", Version: 317, ExtFields: ext, Body: body}
}

// NewResponse builds a response to req with the given code and remark.
func NewResponse(req *Command, code int16, remark string) *Command {
	return &Command{Code: code, Language: "GO", Version: 317, Opaque: req.Opaque, Flag: FlagResponse, Remark: remark}
}

// AppendFrame appends the whole frame for c (length word included) to dst, with a JSON header.
func AppendFrame(dst []byte, c *Command) ([]byte, error) {
	dst, err := AppendFrameHead(dst, c)
	if err != nil {
		return dst, err
	}
	return append(dst, c.Body...), nil
}

// AppendFrameHead appends c's frame up to its body (length word, header-length word, JSON
// header) to dst: the frame is that followed by c.Body.
func AppendFrameHead(dst []byte, c *Command) ([]byte, error) {
	base := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = appendJSONHeader(dst, c)
	hlen := len(dst) - base - 8
	if hlen > 0xFFFFFF {
		return dst[:base], fmt.Errorf("encode header of code %d: header is %d bytes: %w", c.Code, hlen, ErrFrameTooLarge)
	}
	binary.BigEndian.PutUint32(dst[base:], uint32(4+hlen+len(c.Body)))
	binary.BigEndian.PutUint32(dst[base+4:], uint32(SerializeJSON)<<24|uint32(hlen))
	return dst, nil
}

// Encode returns the frame for c.
func Encode(c *Command) ([]byte, error) {
	// Room for the frame as it usually comes out (an ext field takes a few dozen bytes), so
	// that encoding seldom grows the buffer.
	size := 128 + len(c.Remark) + 48*len(c.ExtFields) + len(c.Body)
	return AppendFrame(make([]byte, 0, size), c)
}

// ReadFrame reads one frame from r and returns its content without the length word. A length
// above maxBytes or below the header-length word is an error; the stream cannot be resynchronised
// after it, so the caller must close the connection.
func ReadFrame(r io.Reader, maxBytes int) ([]byte, error) {
	var lw [4]byte
	if _, err := io.ReadFull(r, lw[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lw[:])
	if n < 4 {
		return nil, fmt.Errorf("%w: frame length %d is shorter than its header-length word", ErrBadFrame, n)
	}
	if uint64(n) > uint64(maxBytes) {
		return nil, fmt.Errorf("%w: frame length %d exceeds limit %d", ErrFrameTooLarge, n, maxBytes)
	}
	// A peer may declare a large frame and send nothing more: the buffer grows with what
	// arrives (doubling from frameAllocStepBytes), so a length word alone cannot make the
	// reader allocate the maximum.
	buf := make([]byte, min(int(n), frameAllocStepBytes))
	for got := 0; ; {
		if _, err := io.ReadFull(r, buf[got:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the stream ended inside a frame: not a clean close
			}
			return nil, fmt.Errorf("read frame body of %d bytes: %w", n, err)
		}
		got = len(buf)
		if got == int(n) {
			return buf, nil
		}
		buf = slices.Grow(buf, min(int(n)-got, got))[:got+min(int(n)-got, got)]
	}
}

// frameAllocStepBytes is the most ReadFrame allocates for a frame before its bytes arrive.
const frameAllocStepBytes = 64 << 10

// Decode decodes a frame's content (without the length word). The body aliases frame.
func Decode(frame []byte) (*Command, error) {
	if len(frame) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, need at least 4", ErrBadFrame, len(frame))
	}
	word := binary.BigEndian.Uint32(frame)
	typ := word >> 24
	hlen := int(word & 0xFFFFFF)
	if hlen > len(frame)-4 {
		return nil, fmt.Errorf("%w: header length %d exceeds frame of %d bytes", ErrBadFrame, hlen, len(frame))
	}
	hdr := frame[4 : 4+hlen]
	var c *Command
	var err error
	switch typ {
	case SerializeJSON:
		c, err = decodeJSONHeader(hdr)
	case SerializeRocketMQ:
		c, err = decodeBinaryHeader(hdr)
	default:
		return nil, fmt.Errorf("%w: unknown serialize type %d", ErrBadFrame, typ)
	}
	if err != nil {
		return nil, err
	}
	if body := frame[4+hlen:]; len(body) > 0 {
		c.Body = body
	}
	return c, nil
}

var languageNames = []string{"JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP", "OMS"}

func decodeBinaryHeader(h []byte) (*Command, error) {
	const fixed = 2 + 1 + 2 + 4 + 4 + 4
	if len(h) < fixed {
		return nil, fmt.Errorf("%w: binary header of %d bytes, need at least %d", ErrBadFrame, len(h), fixed)
	}
	c := &Command{}
	c.Code = int16(binary.BigEndian.Uint16(h[0:]))
	if lang := int(h[2]); lang < len(languageNames) {
		c.Language = languageNames[lang]
	} else {
		c.Language = "OTHER"
	}
	c.Version = int32(int16(binary.BigEndian.Uint16(h[3:])))
	c.Opaque = int32(binary.BigEndian.Uint32(h[5:]))
	c.Flag = int32(binary.BigEndian.Uint32(h[9:]))
	rest := h[13:]
	remark, rest, err := takeBytes32(rest, "remark")
	if err != nil {
		return nil, err
	}
	c.Remark = string(remark)
	ext, rest, err := takeBytes32(rest, "ext fields")
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after binary header", ErrBadFrame, len(rest))
	}
	for len(ext) > 0 {
		if len(ext) < 2 {
			return nil, fmt.Errorf("%w: truncated ext key length", ErrBadFrame)
		}
		kl := int(binary.BigEndian.Uint16(ext))
		ext = ext[2:]
		if kl > len(ext) {
			return nil, fmt.Errorf("%w: ext key length %d exceeds %d remaining", ErrBadFrame, kl, len(ext))
		}
		key := string(ext[:kl])
		var val []byte
		val, ext, err = takeBytes32(ext[kl:], "ext value")
		if err != nil {
			return nil, err
		}
		c.setExt(key, string(val))
	}
	return c, nil
}

func takeBytes32(b []byte, what string) (val, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("%w: truncated %s length", ErrBadFrame, what)
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: %s length %d exceeds %d remaining", ErrBadFrame, what, n, len(b))
	}
	return b[:n], b[n:], nil
}

// AppendBinaryFrame appends c as a frame with the ROCKETMQ binary header. Sluice answers with
// JSON; this exists so tests can exercise the binary decoder with what Java peers send.
func AppendBinaryFrame(dst []byte, c *Command) []byte {
	lang := byte(7)
	for i, n := range languageNames {
		if n == c.Language {
			lang = byte(i)
		}
	}
	var h []byte
	h = binary.BigEndian.AppendUint16(h, uint16(c.Code))
	h = append(h, lang)
	h = binary.BigEndian.AppendUint16(h, uint16(c.Version))
	h = binary.BigEndian.AppendUint32(h, uint32(c.Opaque))
	h = binary.BigEndian.AppendUint32(h, uint32(c.Flag))
	h = binary.BigEndian.AppendUint32(h, uint32(len(c.Remark)))
	h = append(h, c.Remark...)
	var ext []byte
	for _, k := range slices.Sorted(maps.Keys(c.ExtFields)) {
		ext = binary.BigEndian.AppendUint16(ext, uint16(len(k)))
		ext = append(ext, k...)
		ext = binary.BigEndian.AppendUint32(ext, uint32(len(c.ExtFields[k])))
		ext = append(ext, c.ExtFields[k]...)
	}
	h = binary.BigEndian.AppendUint32(h, uint32(len(ext)))
	h = append(h, ext...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(4+len(h)+len(c.Body)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(SerializeRocketMQ)<<24|uint32(len(h)))
	dst = append(dst, h...)
	return append(dst, c.Body...)
}

// Transfer returns the command a peer decodes from c's frame (Decode of Encode(c) without the
// length word), without encoding and decoding it: a copy with its own body and c's ext-field
// map (which nothing changes in place), with an empty ext-field map and body as nil and a code
// outside 16 bits split into CodeOutOfRange and WideCode, as decoding makes them. It is for
// an in-process transport (the simulator's network) that must hand the receiver what the wire
// would. ok is false when the copy could differ from what decoding yields (a string that is
// not valid UTF-8, which encoding replaces): the caller must then encode and decode.
func Transfer(c *Command) (got *Command, ok bool) {
	if !utf8.ValidString(c.Language) || !utf8.ValidString(c.Remark) {
		return nil, false
	}
	code, wide := splitCode(int64(c.WireCode()))
	got = &Command{Code: code, WideCode: wide, Language: c.Language, Version: c.Version,
		Opaque: c.Opaque, Flag: c.Flag, Remark: c.Remark}
	if len(c.ExtFields) > 0 {
		for k, v := range c.ExtFields {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, false
			}
		}
		got.ExtFields = c.ExtFields // never changed in place (see Command.ExtFields): shared
	}
	if len(c.Body) > 0 {
		got.Body = slices.Clone(c.Body)
	}
	return got, true
}
