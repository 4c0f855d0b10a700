// Package config owns the configuration files of Sluice's processes: RocketMQ's key=value
// properties format (broker.conf, namesrv.conf, controller.conf), read under RocketMQ's key
// names so an operator's existing files carry over. It parses and validates a file for one
// role (broker, name server, controller) and hands back typed values; which key sets which
// setting of a node is the caller's business (cmd/sluice), as is the precedence of flags.
//
// Every key is one of three kinds: a key Sluice reads for the role (the table in keys.go),
// a RocketMQ key Sluice does not use for the role (reported as ignored, once, by the caller),
// or anything else, which is an error naming the key and suggesting the nearest known key.
// A bad value is an error naming the key and its line. Nothing is left to fail later.
//
// This package does no I/O beyond reading the one file Load is given.
package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Role is a Sluice process a file configures.
type Role uint8

const (
	// Broker is 'sluice broker' (broker.conf).
	Broker Role = 1 << iota
	// NameServer is 'sluice namesrv' (namesrv.conf; with enableControllerInNamesrv, an
	// embedded controller member too).
	NameServer
	// Controller is 'sluice controller' (a standalone controller member's controller.conf).
	Controller
)

// allRoles are every role: keys of the process rather than of one node.
const allRoles = Broker | NameServer | Controller

func (r Role) String() string {
	switch r {
	case Broker:
		return "broker"
	case NameServer:
		return "name server"
	case Controller:
		return "controller"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// File is a parsed and validated configuration file for one role.
type File struct {
	Path string
	Role Role
	// Ignored are the RocketMQ keys the file sets that Sluice does not use for Role, in file
	// order: the caller reports them once at start.
	Ignored []string
	values  map[string]value
}

// value is one key's parsed value.
type value struct {
	raw  string // as written, trimmed
	line int
	s    string // a string, path, IP or enum value (an enum in its canonical spelling)
	i    int64
	b    bool
	list []string
	d    time.Duration
}

// Error is a configuration error: the key (if any) and line it concerns.
type Error struct {
	Path string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and parses the file at path for role.
func Load(path string, role Role) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("config file %s is a directory", path)
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("config file %s: %d bytes, larger than %d", path, st.Size(), MaxFileBytes)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return Parse(path, text, role)
}

// Parse parses text (named path in errors) as a configuration file for role.
func Parse(path string, text []byte, role Role) (*File, error) {
	entries, err := ParseProperties(text)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	f := &File{Path: path, Role: role, values: map[string]value{}}
	for _, e := range entries {
		k, ok := keyTable[e.Key]
		if !ok || k.roles&role == 0 {
			if isRocketMQKey(e.Key) {
				f.Ignored = append(f.Ignored, e.Key)
				continue
			}
			msg := "unknown key"
			if s := suggest(e.Key, role); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			return nil, &Error{Path: path, Line: e.Line, Key: e.Key, Msg: msg}
		}
		v, err := k.parse(e.Value)
		if err != nil {
			return nil, &Error{Path: path, Line: e.Line, Key: e.Key, Msg: fmt.Sprintf("bad value %q: %v", e.Value, err)}
		}
		v.raw, v.line = strings.TrimSpace(e.Value), e.Line
		f.values[e.Key] = v
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return f, nil
}

// check holds the rules that span keys.
func (f *File) check() error {
	errAt := func(key, msg string) error {
		return &Error{Path: f.Path, Line: f.values[key].line, Key: key, Msg: msg}
	}
	if f.Has(KeyControllerAddr) && !f.Bool(KeyEnableControllerMode) {
		return errAt(KeyControllerAddr, "set, but enableControllerMode is not true (a broker uses its controllers only in controller mode)")
	}
	if f.Role == Broker && f.Bool(KeyEnableControllerMode) && !f.Has(KeyControllerAddr) {
		return errAt(KeyEnableControllerMode, "true, but controllerAddr is not set")
	}
	if f.Role != Broker {
		peers, self := f.Has(KeyControllerPeers), f.Has(KeyControllerSelfID)
		if peers != self {
			if peers {
				return errAt(KeyControllerPeers, "set without controllerDLegerSelfId (which member is this one?)")
			}
			return errAt(KeyControllerSelfID, "set without controllerDLegerPeers")
		}
		if peers {
			if _, err := f.ControllerMembers(); err != nil {
				return errAt(KeyControllerSelfID, err.Error())
			}
		}
		if f.Role == Controller && !peers {
			return &Error{Path: f.Path, Key: KeyControllerPeers, Msg: "required for a controller member (with controllerDLegerSelfId)"}
		}
		if f.Bool(KeyEnableControllerInNamesrv) && !peers {
			return errAt(KeyEnableControllerInNamesrv, "true, but controllerDLegerPeers and controllerDLegerSelfId are not set")
		}
	}
	return nil
}

// Has reports whether the file sets key.
func (f *File) Has(key string) bool {
	_, ok := f.values[f.known(key)]
	return ok
}

// Line is the line the file sets key on, 0 if it does not.
func (f *File) Line(key string) int { return f.values[f.known(key)].line }

// Raw is key's value as written (trimmed), "" if unset.
func (f *File) Raw(key string) string { return f.values[f.known(key)].raw }

// String is a string key's value, "" if unset.
func (f *File) String(key string) string {
	return f.typed(key, kindString, kindEnum, kindIP, kindPath).s
}

// Int is an integer key's value, 0 if unset.
func (f *File) Int(key string) int64 { return f.typed(key, kindInt).i }

// Duration returns a duration key's value.
func (f *File) Duration(key string) time.Duration { return f.typed(key, kindRetention).d }

// Bool is a boolean key's value, false if unset.
func (f *File) Bool(key string) bool { return f.typed(key, kindBool).b }

// List is a list key's elements, nil if unset.
func (f *File) List(key string) []string { return slices.Clone(f.typed(key, kindList, kindHours).list) }

// Keys are the Sluice keys the file sets, in key order.
func (f *File) Keys() []string {
	out := make([]string, 0, len(f.values))
	for k := range f.values {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// known panics on a key that is not in the table: a caller's typo, not the operator's.
func (f *File) known(key string) string {
	if _, ok := keyTable[key]; !ok {
		panic("config: no key " + key)
	}
	return key
}

func (f *File) typed(key string, kinds ...kind) value {
	k, ok := keyTable[key]
	if !ok || !slices.Contains(kinds, k.kind) {
		panic(fmt.Sprintf("config: key %s is not of the kind asked for", key))
	}
	return f.values[key]
}

// Errorf is an error about key's value, for checks the caller makes (a value this package
// cannot judge alone), naming the file, line and key as Parse's errors do.
func (f *File) Errorf(key, format string, args ...any) error {
	return &Error{Path: f.Path, Line: f.Line(key), Key: key, Msg: fmt.Sprintf("bad value %q: %s", f.Raw(key), fmt.Sprintf(format, args...))}
}

// Member is one controller member of controllerDLegerPeers.
type Member struct {
	Name string // as the file names it ("n0")
	ID   uint64 // Sluice's member id: its position in controllerDLegerPeers, from 1
	Addr string
}

// ControllerMembers are the members of controllerDLegerPeers ("n0-ip:port;n1-ip:port;...")
// in order, numbered from 1 (Sluice's controller ids), and which of them is this process
// (controllerDLegerSelfId). It returns nil, nil when the file names no members.
func (f *File) ControllerMembers() ([]Member, error) {
	if !f.Has(KeyControllerPeers) {
		return nil, nil
	}
	var out []Member
	for i, p := range f.List(KeyControllerPeers) {
		name, addr, _ := strings.Cut(p, "-")
		out = append(out, Member{Name: name, ID: uint64(i + 1), Addr: addr})
	}
	if _, err := f.Self(out); err != nil {
		return nil, err
	}
	return out, nil
}

// Self is the member controllerDLegerSelfId names.
func (f *File) Self(members []Member) (Member, error) {
	self := f.String(KeyControllerSelfID)
	for _, m := range members {
		if m.Name == self {
			return m, nil
		}
	}
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name
	}
	return Member{}, fmt.Errorf("%q is not one of controllerDLegerPeers' members (%s)", self, strings.Join(names, ", "))
}

// ErrNoConfig is returned by ConfigPath when args name no file.
var ErrNoConfig = errors.New("no --config")

// ConfigPath finds "--config FILE", "-config FILE" or "--config=FILE" among command-line args
// (before "--"), so a command can load the file before it declares its flags with the file's
// values as defaults. A --config without a value is an error.
func ConfigPath(args []string) (string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if hasVal {
			if val == "" {
				return "", errors.New("--config: empty file name")
			}
			return val, nil
		}
		if i+1 == len(args) {
			return "", errors.New("--config: missing file name")
		}
		return args[i+1], nil
	}
	return "", ErrNoConfig
}
