package codec

import (
	"encoding/binary"
	"fmt"
)

// BatchMessage is one message of a SEND_BATCH_MESSAGE body: what the producer sets per message.
// Everything else (topic, queue, timestamps) comes from the request header.
type BatchMessage struct {
	Flag int32
	// Body aliases the request body.
	Body []byte
	// Properties is the encoded property block as the producer wrote it.
	Properties string
}

// batchRecordFixed is the size of a batch record without its body and properties: totalSize,
// magic, bodyCRC, flag and bodyLen (int32 each) and propsLen (int16).
const batchRecordFixed = 4*5 + 2

// DecodeBatch splits a SEND_BATCH_MESSAGE body into its messages (docs/protocol.md, "Batch sends"): records
// back to back, each
//
//	int32 totalSize | int32 magic | int32 bodyCRC | int32 flag | int32 bodyLen | body | int16 propsLen | props
//
// with totalSize = 22 + bodyLen + propsLen. Clients write 0 for magic and bodyCRC and Java's
// broker ignores both, so they are not checked. Anything else that does not add up (a size
// that disagrees with the fields, a record cut short, bytes after the last record, an empty
// batch) is an error wrapping ErrBadFrame that says where. Bodies alias b.
func DecodeBatch(b []byte) ([]BatchMessage, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: batch body is empty", ErrBadFrame)
	}
	var out []BatchMessage
	for off := 0; off < len(b); {
		i := len(out)
		rest := b[off:]
		if len(rest) < batchRecordFixed {
			return nil, fmt.Errorf("%w: batch record %d at byte %d: %d bytes left, a record needs at least %d",
				ErrBadFrame, i, off, len(rest), batchRecordFixed)
		}
		be := binary.BigEndian
		total := int64(int32(be.Uint32(rest[0:])))
		flag := int32(be.Uint32(rest[12:]))
		bodyLen := int64(int32(be.Uint32(rest[16:])))
		if total < batchRecordFixed || total > int64(len(rest)) {
			return nil, fmt.Errorf("%w: batch record %d at byte %d: totalSize %d with %d bytes left",
				ErrBadFrame, i, off, total, len(rest))
		}
		if bodyLen < 0 || bodyLen > total-batchRecordFixed {
			return nil, fmt.Errorf("%w: batch record %d at byte %d: body length %d does not fit in totalSize %d",
				ErrBadFrame, i, off, bodyLen, total)
		}
		bodyEnd := 20 + int(bodyLen)
		propsLen := int64(int16(be.Uint16(rest[bodyEnd:])))
		if propsLen < 0 || 22+bodyLen+propsLen != total {
			return nil, fmt.Errorf("%w: batch record %d at byte %d: totalSize %d, but 22 + body %d + properties %d = %d",
				ErrBadFrame, i, off, total, bodyLen, propsLen, 22+bodyLen+propsLen)
		}
		out = append(out, BatchMessage{
			Flag:       flag,
			Body:       rest[20:bodyEnd:bodyEnd],
			Properties: string(rest[bodyEnd+2 : total]),
		})
		off += int(total)
	}
	return out, nil
}

// AppendBatchRecord appends m's batch record to dst, as the official clients write it (magic
// and bodyCRC 0). It is the inverse of DecodeBatch, for tests and for clients.
func AppendBatchRecord(dst []byte, m BatchMessage) ([]byte, error) {
	if len(m.Properties) > MaxPropertiesBytes {
		return dst, fmt.Errorf("properties of %d bytes exceed %d", len(m.Properties), MaxPropertiesBytes)
	}
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(batchRecordFixed+len(m.Body)+len(m.Properties)))
	dst = be.AppendUint32(dst, 0)
	dst = be.AppendUint32(dst, 0)
	dst = be.AppendUint32(dst, uint32(m.Flag))
	dst = be.AppendUint32(dst, uint32(len(m.Body)))
	dst = append(dst, m.Body...)
	dst = be.AppendUint16(dst, uint16(len(m.Properties)))
	dst = append(dst, m.Properties...)
	return dst, nil
}
