package console

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// LookupView is the message lookup: its forms' values and, once asked, what was found.
type LookupView struct {
	ID, Topic, Key string
	Asked          string // what was looked up, "" before a lookup
	Error          string
	Results        []MessageView
}

// MessageView is one message found, formatted.
type MessageView struct {
	MsgID, OffsetMsgID string
	Topic              string
	Broker             string
	QueueID            int32
	QueueOffset        int64
	Tags, Keys         string
	Born, Stored       string
	ReconsumeTimes     int32
	Properties         []Property
	BodyHow            string // "12 bytes, text", "300 bytes, zlib-compressed, hex", ...
	Body               string
	BodyCut            int // bytes not shown
}

// Property is one message property.
type Property struct{ Key, Value string }

// maxShownBody bounds the body bytes a page shows of one message.
const maxShownBody = 4096

// lookupQuery says what a lookup form asked; ok is false when it asked nothing.
func lookupQuery(id, topic, key string) (asked string, ok bool, err error) {
	id, topic, key = strings.TrimSpace(id), strings.TrimSpace(topic), strings.TrimSpace(key)
	switch {
	case id != "":
		return "offset message id " + id, true, nil
	case topic == "" && key == "":
		return "", false, nil
	case topic == "" || key == "":
		return "", false, fmt.Errorf("a lookup by key needs both a topic and a key")
	}
	return fmt.Sprintf("key %q in topic %s", key, topic), true, nil
}

// lookup runs the lookup the form asked for against src.
func lookup(src Source, id, topic, key string) LookupView {
	v := LookupView{ID: id, Topic: topic, Key: key}
	asked, ok, err := lookupQuery(id, topic, key)
	v.Asked = asked
	if err != nil {
		v.Error = err.Error()
		return v
	}
	if !ok {
		return v
	}
	var found []Message
	if id = strings.TrimSpace(id); id != "" {
		m, err := src.MessageByID(id)
		if err == nil {
			found = []Message{m}
		}
		v.Error = errText(err)
	} else {
		found, err = src.MessagesByKey(strings.TrimSpace(topic), strings.TrimSpace(key))
		v.Error = errText(err)
	}
	for _, m := range found {
		v.Results = append(v.Results, messageView(m))
	}
	return v
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func messageView(m Message) MessageView {
	v := MessageView{MsgID: m.MsgID, OffsetMsgID: m.OffsetMsgID, Topic: m.Topic, Broker: m.Broker, QueueID: m.QueueID,
		QueueOffset: m.QueueOffset, Tags: orUnknown(m.Tags), Keys: orUnknown(m.Keys), ReconsumeTimes: m.ReconsumeTimes,
		Born:   m.BornAt.UTC().Format("2006-01-02 15:04:05.000 UTC") + " from " + m.BornHost,
		Stored: m.StoredAt.UTC().Format("2006-01-02 15:04:05.000 UTC") + " at " + m.StoreHost}
	for _, k := range slices.Sorted(maps.Keys(m.Properties)) {
		v.Properties = append(v.Properties, Property{k, m.Properties[k]})
	}
	body := m.Body
	v.BodyCut = max(0, len(body)-maxShownBody)
	body = body[:len(body)-v.BodyCut]
	how := []string{fmt.Sprintf("%d bytes", m.BodyBytes)}
	if m.BodyNote != "" {
		how = append(how, m.BodyNote)
	}
	switch {
	case len(body) == 0:
		how = append(how, "empty")
	case isText(body):
		how = append(how, "text")
		v.Body = string(body)
	default:
		how = append(how, "hex")
		v.Body = hex.Dump(body)
	}
	v.BodyHow = strings.Join(how, ", ")
	return v
}

// isText reports whether b reads as text: valid UTF-8 of printable characters, newlines and
// tabs.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}
