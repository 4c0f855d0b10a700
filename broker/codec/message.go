package codec

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"net/netip"
	"sort"
	"strings"
)

// MessageMagic is the 4.x MAGICCODE written in every stored record.
const MessageMagic = 0xDAA320A7

// SysFlag bits of a stored message.
const (
	SysFlagCompressed = 1 << 0
	SysFlagMultiTags  = 1 << 1
	// SysFlagTransactionMask covers the transaction type (prepared 1<<2, commit 2<<2,
	// rollback 3<<2); 0 is a normal message.
	SysFlagTransactionMask = 3 << 2
	SysFlagBornHostV6      = 1 << 4
	SysFlagStoreHostV6     = 1 << 5
	// The transaction types within SysFlagTransactionMask.
	SysFlagTxnPrepared = 1 << 2
	SysFlagTxnCommit   = 2 << 2
	SysFlagTxnRollback = 3 << 2
)

// Well-known property keys.
const (
	PropTags     = "TAGS"
	PropKeys     = "KEYS"
	PropUniqKey  = "UNIQ_KEY"
	PropDelay    = "DELAY"
	PropWait     = "WAIT"
	PropRealTopc = "REAL_TOPIC"
	PropRealQID  = "REAL_QID"
	// PropTranMsg is "true" on a transactional half message; PropProducerGroup (PGROUP) names
	// the producer group the broker asks about it (CHECK_TRANSACTION_STATE).
	PropTranMsg       = "TRAN_MSG"
	PropProducerGroup = "PGROUP"
	PropTransactionID = "__transactionId__"
)

// Message is one message as the broker stores it and as pull responses carry it (the 4.x
// stored record layout, docs/protocol.md, "Stored message records").
type Message struct {
	Topic                     string
	QueueID                   int32
	Flag                      int32
	QueueOffset               int64
	PhysicalOffset            int64
	SysFlag                   int32
	BornTimestamp             int64
	BornHost                  netip.AddrPort
	StoreTimestamp            int64
	StoreHost                 netip.AddrPort
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	Body                      []byte
	// Properties is the encoded property block (key 0x01 value 0x02 ...), kept byte for byte
	// as the producer sent it.
	Properties string
}

// MaxTopicBytes and MaxPropertiesBytes bound the variable fields (a 1-byte and a signed
// 2-byte length in the record).
const (
	MaxTopicBytes      = 127
	MaxPropertiesBytes = 32767
)

func hostBytes(ap netip.AddrPort) int {
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		return 20
	}
	return 8
}

// RecordSize is the size of m's stored record.
func RecordSize(m *Message) int {
	return 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + hostBytes(m.BornHost) + 8 + hostBytes(m.StoreHost) +
		4 + 8 + 4 + len(m.Body) + 1 + len(m.Topic) + 2 + len(m.Properties)
}

func appendHost(dst []byte, ap netip.AddrPort) []byte {
	a := ap.Addr()
	if a.Is6() && !a.Is4In6() {
		b := a.As16()
		dst = append(dst, b[:]...)
	} else if !a.IsValid() {
		dst = append(dst, 0, 0, 0, 0) // an unset host is written as 0.0.0.0, never a panic
	} else {
		b := a.Unmap().As4()
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(ap.Port()))
}

// AppendRecord appends m's stored record to dst. The V6 sysflag bits are derived from the hosts;
// topic and properties longer than their length fields allow are an error.
func AppendRecord(dst []byte, m *Message) ([]byte, error) {
	if len(m.Topic) > MaxTopicBytes {
		return dst, fmt.Errorf("topic of %d bytes exceeds %d", len(m.Topic), MaxTopicBytes)
	}
	if len(m.Properties) > MaxPropertiesBytes {
		return dst, fmt.Errorf("properties of %d bytes exceed %d", len(m.Properties), MaxPropertiesBytes)
	}
	sys := m.SysFlag &^ (SysFlagBornHostV6 | SysFlagStoreHostV6)
	if hostBytes(m.BornHost) == 20 {
		sys |= SysFlagBornHostV6
	}
	if hostBytes(m.StoreHost) == 20 {
		sys |= SysFlagStoreHostV6
	}
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(RecordSize(m)))
	dst = be.AppendUint32(dst, MessageMagic)
	dst = be.AppendUint32(dst, crc32.ChecksumIEEE(m.Body))
	dst = be.AppendUint32(dst, uint32(m.QueueID))
	dst = be.AppendUint32(dst, uint32(m.Flag))
	dst = be.AppendUint64(dst, uint64(m.QueueOffset))
	dst = be.AppendUint64(dst, uint64(m.PhysicalOffset))
	dst = be.AppendUint32(dst, uint32(sys))
	dst = be.AppendUint64(dst, uint64(m.BornTimestamp))
	dst = appendHost(dst, m.BornHost)
	dst = be.AppendUint64(dst, uint64(m.StoreTimestamp))
	dst = appendHost(dst, m.StoreHost)
	dst = be.AppendUint32(dst, uint32(m.ReconsumeTimes))
	dst = be.AppendUint64(dst, uint64(m.PreparedTransactionOffset))
	dst = be.AppendUint32(dst, uint32(len(m.Body)))
	dst = append(dst, m.Body...)
	dst = append(dst, byte(len(m.Topic)))
	dst = append(dst, m.Topic...)
	dst = be.AppendUint16(dst, uint16(len(m.Properties)))
	dst = append(dst, m.Properties...)
	return dst, nil
}

type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: record field %s needs %d bytes, %d remain", ErrBadFrame, what, n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *recordReader) u32(what string) uint32 {
	if v := r.take(4, what); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *recordReader) u64(what string) uint64 {
	if v := r.take(8, what); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// host reads an address and its port; what names the address, whatPort the port (passed
// apart so that no name is built for every record read).
func (r *recordReader) host(v6 bool, what, whatPort string) netip.AddrPort {
	n := 4
	if v6 {
		n = 16
	}
	ip := r.take(n, what)
	port := r.u32(whatPort)
	if r.err == nil && port > 0xFFFF {
		r.err = fmt.Errorf("%w: %s port %d exceeds 65535", ErrBadFrame, what, port)
	}
	if r.err != nil {
		return netip.AddrPort{}
	}
	addr, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(addr, uint16(port))
}

// DecodeRecord decodes one stored record at the start of b and returns it with the number of
// bytes it occupies. The body and properties alias b.
func DecodeRecord(b []byte) (*Message, int, error) { return decodeRecord(b, true) }

// DecodeRecordUnchecked is DecodeRecord without the body checksum: for a best-effort reading
// of the header of a record known to be damaged (a bit flipped in its body). What it returns
// may be wrong anywhere; never serve it.
func DecodeRecordUnchecked(b []byte) (*Message, int, error) { return decodeRecord(b, false) }

func decodeRecord(b []byte, checkBody bool) (*Message, int, error) {
	r := &recordReader{b: b}
	total := int(int32(r.u32("total size")))
	if r.err != nil {
		return nil, 0, r.err
	}
	if total < 4 || total > len(b) {
		return nil, 0, fmt.Errorf("%w: record total size %d with %d bytes available", ErrBadFrame, total, len(b))
	}
	r.b = b[4:total]
	m := &Message{}
	if magic := r.u32("magic"); r.err == nil && magic != MessageMagic {
		return nil, 0, fmt.Errorf("%w: record magic %#x", ErrBadFrame, magic)
	}
	bodyCRC := r.u32("body crc")
	m.QueueID = int32(r.u32("queue id"))
	m.Flag = int32(r.u32("flag"))
	m.QueueOffset = int64(r.u64("queue offset"))
	m.PhysicalOffset = int64(r.u64("physical offset"))
	m.SysFlag = int32(r.u32("sysflag"))
	m.BornTimestamp = int64(r.u64("born timestamp"))
	m.BornHost = r.host(m.SysFlag&SysFlagBornHostV6 != 0, "born host", "born host port")
	m.StoreTimestamp = int64(r.u64("store timestamp"))
	m.StoreHost = r.host(m.SysFlag&SysFlagStoreHostV6 != 0, "store host", "store host port")
	m.ReconsumeTimes = int32(r.u32("reconsume times"))
	m.PreparedTransactionOffset = int64(r.u64("prepared transaction offset"))
	m.Body = r.take(int(int32(r.u32("body length"))), "body")
	if tl := r.take(1, "topic length"); tl != nil {
		m.Topic = string(r.take(int(tl[0]), "topic"))
	}
	if pl := r.take(2, "properties length"); pl != nil {
		m.Properties = string(r.take(int(int16(binary.BigEndian.Uint16(pl))), "properties"))
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	if len(r.b) != 0 {
		return nil, 0, fmt.Errorf("%w: %d bytes left inside record of size %d", ErrBadFrame, len(r.b), total)
	}
	if checkBody && crc32.ChecksumIEEE(m.Body) != bodyCRC {
		return nil, 0, fmt.Errorf("%w: body crc mismatch", ErrBadFrame)
	}
	return m, total, nil
}

// RecordProperties returns the property block of one stored record at the start of b without
// decoding the rest (no body checksum, no allocation beyond the returned string): for filters
// that look at a record's properties, such as the broker's exact tag check.
func RecordProperties(b []byte) (string, error) {
	r := &recordReader{b: b}
	total := int(int32(r.u32("total size")))
	if r.err != nil {
		return "", r.err
	}
	if total < 4 || total > len(b) {
		return "", fmt.Errorf("%w: record total size %d with %d bytes available", ErrBadFrame, total, len(b))
	}
	r.b = b[4:total]
	r.take(4+4+4+4+8+8, "fixed fields")
	sysFlag := int32(r.u32("sysflag"))
	hostLen := func(v6 bool) int {
		if v6 {
			return 16 + 4
		}
		return 4 + 4
	}
	r.take(8+hostLen(sysFlag&SysFlagBornHostV6 != 0)+8+hostLen(sysFlag&SysFlagStoreHostV6 != 0)+4+8, "hosts and times")
	r.take(int(int32(r.u32("body length"))), "body")
	if tl := r.take(1, "topic length"); tl != nil {
		r.take(int(tl[0]), "topic")
	}
	var props []byte
	if pl := r.take(2, "properties length"); pl != nil {
		props = r.take(int(int16(binary.BigEndian.Uint16(pl))), "properties")
	}
	if r.err != nil {
		return "", r.err
	}
	if len(r.b) != 0 {
		return "", fmt.Errorf("%w: %d bytes left inside record of size %d", ErrBadFrame, len(r.b), total)
	}
	return string(props), nil
}

// ParseProperties decodes a property block; it accepts a trailing separator or none, and
// ignores entries without exactly one key/value separator, as the Go client does.
func ParseProperties(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, "\x02") {
		k, v, ok := strings.Cut(kv, "\x01")
		if !ok || strings.Contains(v, "\x01") {
			continue
		}
		out[k] = v
	}
	return out
}

// EncodeProperties encodes props with sorted keys and a trailing separator, as the Go client does.
func EncodeProperties(props map[string]string) string {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(k)
		sb.WriteByte(1)
		sb.WriteString(props[k])
		sb.WriteByte(2)
	}
	return sb.String()
}

// Property returns one property from an encoded block without building a map. It agrees with
// ParseProperties: malformed entries are skipped and the last of duplicate keys wins.
func Property(s, key string) string {
	var val string
	for len(s) > 0 {
		var kv string
		kv, s, _ = strings.Cut(s, "\x02")
		if k, v, ok := strings.Cut(kv, "\x01"); ok && k == key && !strings.Contains(v, "\x01") {
			val = v
		}
	}
	return val
}

// LookupProperty returns one property from an encoded block as the Java broker's
// MessageDecoder.string2messageProperties decodes it, which is what RocketMQ's SQL92 filter
// sees: an entry needs a non-empty key and a non-empty value (an empty value reads as
// missing), the key ends at the first 0x01 (the value may hold more), and the last duplicate
// wins.
func LookupProperty(s, key string) (string, bool) {
	var val string
	found := false
	for len(s) > 0 {
		var kv string
		kv, s, _ = strings.Cut(s, "\x02")
		if k, v, ok := strings.Cut(kv, "\x01"); ok && k == key && k != "" && v != "" {
			val, found = v, true
		}
	}
	return val, found
}

// TagsHash is the consume-queue tag code: Java's String.hashCode of the TAGS property (0 when empty).
func TagsHash(tags string) int64 {
	var h int32
	for _, r := range tags {
		// Java hashes UTF-16 code units.
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return int64(h)
}

// OffsetMsgID is the 4.x offset message id: store host IPv4 (4 bytes) and port (4 bytes), then
// the physical offset (8 bytes), as 32 upper-case hex characters (IPv6: 16 + 4 + 8 bytes).
func OffsetMsgID(storeHost netip.AddrPort, physicalOffset int64) string {
	b := appendHost(nil, storeHost)
	b = binary.BigEndian.AppendUint64(b, uint64(physicalOffset))
	return strings.ToUpper(hex.EncodeToString(b))
}

// ParseOffsetMsgID reverses OffsetMsgID.
func ParseOffsetMsgID(id string) (netip.AddrPort, int64, error) {
	b, err := hex.DecodeString(id)
	if err != nil || (len(b) != 16 && len(b) != 28) {
		return netip.AddrPort{}, 0, fmt.Errorf("bad offset message id %q", id)
	}
	r := &recordReader{b: b}
	host := r.host(len(b) == 28, "host", "host port")
	off := int64(r.u64("offset"))
	return host, off, r.err
}
