// Package codec owns the RocketMQ 4.x remoting wire format: the length-prefixed frame, the JSON
// and binary (ROCKETMQ) command headers, and the stored message record that pull responses
// carry. It is pure: no I/O beyond reading a frame from an io.Reader, no global state.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
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
	Code      int16
	Language  string
	Version   int16
	Opaque    int32
	Flag      int32
	Remark    string
	ExtFields map[string]string
	Body      []byte
}

// IsResponse reports whether the response bit is set.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// Ext returns an ext field, "" if absent.
func (c *Command) Ext(key string) string { return c.ExtFields[key] }

// SetExt sets an ext field, allocating the map if needed.
func (c *Command) SetExt(key, value string) {
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

// jsonHeader is the JSON header as RocketMQ clients write it.
type jsonHeader struct {
	Code      int16             `json:"code"`
	Language  string            `json:"language"`
	Version   int16             `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    string            `json:"remark,omitempty"`
	ExtFields map[string]string `json:"extFields,omitempty"`
}

// AppendFrame appends the whole frame for c (length word included) to dst, with a JSON header.
func AppendFrame(dst []byte, c *Command) ([]byte, error) {
	base := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = appendJSONHeader(dst, c)
	hlen := len(dst) - base - 8
	if hlen > 0xFFFFFF {
		return dst[:base], fmt.Errorf("encode header of code %d: header is %d bytes: %w", c.Code, hlen, ErrFrameTooLarge)
	}
	dst = append(dst, c.Body...)
	binary.BigEndian.PutUint32(dst[base:], uint32(4+hlen+len(c.Body)))
	binary.BigEndian.PutUint32(dst[base+4:], uint32(SerializeJSON)<<24|uint32(hlen))
	return dst, nil
}

// Encode returns the frame for c.
func Encode(c *Command) ([]byte, error) { return AppendFrame(nil, c) }

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
	c.Version = int16(binary.BigEndian.Uint16(h[3:]))
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
		c.SetExt(key, string(val))
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

// ExtInt parses an integer ext field; a missing or malformed value is an error naming the key.
func (c *Command) ExtInt(key string) (int64, error) {
	v, ok := c.ExtFields[key]
	if !ok {
		return 0, fmt.Errorf("missing header field %q", key)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("header field %q: %q is not an integer", key, v)
	}
	return n, nil
}
