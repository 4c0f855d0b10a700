package codec

// ACLHeader is the part of a request's header that RocketMQ's ACL adds to every request (Java's
// SessionCredentials fields, which AclClientRPCHook writes): the account, the signature of
// the rest of the header and the body, and an optional session token. Package acl computes and
// checks the signature; every field is optional here.
type ACLHeader struct {
	AccessKey     string
	Signature     string
	SecurityToken string
}

// The ext-field names of ACLHeader, for package acl, which signs over every ext field but
// Signature (and, as the Java broker does, the unique-key query flag).
const (
	ExtAccessKey      = "AccessKey"
	ExtSignature      = "Signature"
	ExtSecurityToken  = "SecurityToken"
	ExtUniqueKeyQuery = "_UNIQUE_KEY_QUERY"
)

func (h *ACLHeader) fields(f extFields) {
	f.str(ExtAccessKey, &h.AccessKey)
	f.str(ExtSignature, &h.Signature)
	f.strIf(ExtSecurityToken, &h.SecurityToken)
}
