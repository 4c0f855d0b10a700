package adminclient

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
)

// Inflate returns a zlib-compressed message body (sysFlag's compressed bit) inflated, failing
// when it inflates beyond limit bytes: a viewer must not be made to hold what a producer
// compressed well.
func Inflate(b []byte, limit int) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, fmt.Errorf("inflates beyond %d bytes", limit)
	}
	return out, nil
}
