package brokernode

import (
	"encoding/json"
	"fmt"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/sqlfilter"
	"github.com/sluicemq/sluice/broker/store"
)

// Expression types of a subscription (RocketMQ's ExpressionType).
const (
	exprTag   = "TAG"
	exprSQL92 = "SQL92"
)

// isTagType is ExpressionType.isTagType: no type means tags.
func isTagType(t string) bool { return t == "" || t == exprTag }

// subscription is what a consumer group asked for on one topic: tags ("*", "A || B") or a
// SQL92 selector over message properties, parsed once when it arrives.
type subscription struct {
	expr     string
	exprType string
	sql      *sqlfilter.Expr // a parsed SQL92 selector
	err      error           // why a non-tag expression is refused
}

// parseSubscription reads an expression of any type; a SQL92 one that does not parse (or a
// type Sluice does not know) keeps its error, answered to every pull that would use it.
func parseSubscription(exprType, expr string) subscription {
	s := subscription{expr: expr, exprType: exprType}
	switch {
	case isTagType(exprType):
	case exprType == exprSQL92:
		s.sql, s.err = sqlfilter.Parse(expr)
	default:
		s.err = fmt.Errorf("expression type %q is not supported (TAG or SQL92)", exprType)
	}
	return s
}

func (s subscription) same(exprType, expr string) bool {
	return s.exprType == exprType && s.expr == expr
}

// pullFilter turns a subscription into the store's filter. A subscription the broker refuses
// gives the response code and remark to answer with instead: the pull then reads nothing, so
// the consumer's offset stays where it is.
func (b *Broker) pullFilter(s subscription) (store.Filter, int16, string) {
	if isTagType(s.exprType) {
		return tagFilter(s.expr), codec.Success, ""
	}
	if !b.cfg.EnablePropertyFilter {
		return store.Filter{}, codec.SystemError, "The broker does not support consumer to filter message by " + s.exprType
	}
	if s.err != nil {
		return store.Filter{}, codec.SubscriptionParseFailed,
			fmt.Sprintf("parse the consumer's subscription failed: %s expression %q: %v", s.exprType, s.expr, s.err)
	}
	return sqlFilter(s.sql, b.cfg.Bugs.Has(bugs.SQLAbsentAsEmpty)), codec.Success, ""
}

// sqlFilter selects the messages whose properties (user properties and the system ones, TAGS
// among them, as the Java broker decodes them) satisfy a SQL92 selector. The consume queue
// holds no property bitmap, so every record is read and evaluated. absentAsEmpty is a planted
// bug (Config.Bugs.Has(bugs.SQLAbsentAsEmpty)).
func sqlFilter(e *sqlfilter.Expr, absentAsEmpty bool) store.Filter {
	return store.Filter{
		Record: func(rec []byte) bool {
			props, err := codec.RecordProperties(rec)
			if err != nil {
				return false // the store checked the record; an undecodable one is not delivered by a filtered pull
			}
			return e.Match(func(name string) (string, bool) {
				v, ok := codec.LookupProperty(props, name)
				return v, ok || absentAsEmpty
			})
		},
	}
}

// checkClientConfig is the body of CHECK_CLIENT_CONFIG, which Java consumers send before
// they start with a non-tag subscription.
type checkClientConfig struct {
	ClientID         string `json:"clientId"`
	Group            string `json:"group"`
	SubscriptionData *struct {
		Topic          string `json:"topic"`
		SubString      string `json:"subString"`
		ExpressionType string `json:"expressionType"`
	} `json:"subscriptionData"`
}

// handleCheckClientConfig serves CHECK_CLIENT_CONFIG as Java's ClientManageProcessor does:
// SUCCESS for tags, SYSTEM_ERROR when property filters are off, SUBSCRIPTION_PARSE_FAILED with
// the parser's message for an expression that does not parse.
func (b *Broker) handleCheckClientConfig(req *codec.Command) *codec.Command {
	var body checkClientConfig
	if len(req.Body) > 0 {
		if err := json.Unmarshal(req.Body, &body); err != nil {
			return codec.NewResponse(req, codec.SystemError, "check client config: bad body: "+err.Error())
		}
	}
	if sd := body.SubscriptionData; sd != nil {
		s := parseSubscription(sd.ExpressionType, sd.SubString)
		if _, code, remark := b.pullFilter(s); code != codec.Success {
			b.log.Warn("consumer's subscription refused", "client", body.ClientID, "group", body.Group,
				"topic", sd.Topic, "type", sd.ExpressionType, "expression", sd.SubString, "remark", remark)
			return codec.NewResponse(req, code, remark)
		}
	}
	return codec.NewResponse(req, codec.Success, "")
}
