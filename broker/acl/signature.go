package acl

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"slices"

	"github.com/sluicemq/sluice/broker/codec"
)

// content is what a request's signature covers, as RocketMQ computes it (AclUtils
// combineRequestContent): the values of the ext fields sorted by key, concatenated, then the
// body. Signature itself is never covered; skip names more fields left out.
func content(ext map[string]string, body []byte, skip ...string) []byte {
	keys := make([]string, 0, len(ext))
	n := len(body)
	for k, v := range ext {
		if k == codec.ExtSignature || slices.Contains(skip, k) {
			continue
		}
		keys = append(keys, k)
		n += len(v)
	}
	slices.Sort(keys)
	buf := make([]byte, 0, n)
	for _, k := range keys {
		buf = append(buf, ext[k]...)
	}
	return append(buf, body...)
}

// signature is RocketMQ's signature of data: base64 of its HMAC-SHA1 under secret.
func signature(data []byte, secret string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(data)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Sign is the signature of a request with ext fields ext (AccessKey among them) and body, as
// RocketMQ's clients compute it.
func Sign(ext map[string]string, body []byte, secret string) string {
	return signature(content(ext, body), secret)
}

// Verify reports whether cmd carries the signature secret gives it. The Java broker signs over
// every ext field but Signature and the unique-key query flag; the accepted variants cover
// what the official clients send:
//
//   - the Java client's AclClientRPCHook covers every field but Signature, SecurityToken
//     included (the flag too, when a query carries it);
//   - the official Go client's ACL interceptor leaves SecurityToken out of what it signs,
//     though it sends it.
//
// At most three HMACs are computed, and only for a request whose first variant fails.
func Verify(cmd *codec.Command, secret string, auth codec.ACLHeader) bool {
	want := []byte(auth.Signature)
	if len(want) == 0 {
		return false
	}
	try := func(skip ...string) bool {
		return hmac.Equal([]byte(signature(content(cmd.ExtFields, cmd.Body, skip...), secret)), want)
	}
	_, hasFlag := cmd.ExtFields[codec.ExtUniqueKeyQuery]
	_, hasToken := cmd.ExtFields[codec.ExtSecurityToken]
	switch {
	case try(codec.ExtUniqueKeyQuery):
		return true
	case hasFlag && try():
		return true
	case hasToken && try(codec.ExtSecurityToken):
		return true
	}
	return false
}

// Credentials are the account a node signs its own requests with (to name servers,
// controllers and other brokers).
type Credentials struct {
	AccessKey string
	SecretKey string
}

// Sign returns cmd signed with c: a copy whose ext fields also hold AccessKey and Signature
// (cmd itself is not changed, so a node may keep and resend it). A response is returned as
// it is.
func (c Credentials) Sign(cmd *codec.Command) *codec.Command {
	if cmd.IsResponse() {
		return cmd
	}
	signed := *cmd
	signed.ExtFields = make(map[string]string, len(cmd.ExtFields)+2)
	for k, v := range cmd.ExtFields {
		if k != codec.ExtSignature && k != codec.ExtAccessKey && k != codec.ExtSecurityToken {
			signed.ExtFields[k] = v
		}
	}
	signed.ExtFields[codec.ExtAccessKey] = c.AccessKey
	signed.ExtFields[codec.ExtSignature] = Sign(signed.ExtFields, signed.Body, c.SecretKey)
	return &signed
}
