package brokernode

// Subscription groups an admin configures: UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200) and
// DELETE_SUBSCRIPTIONGROUP (207), stored by the store (subgroups.json), listed with the groups
// the broker knows otherwise by GET_ALL_SUBSCRIPTIONGROUP_CONFIG (admin.go) and copied by a
// slave from its master with the rest of the metadata (metasync.go). Of a group's settings the
// broker acts on consumeEnable (a disabled group's pulls are refused NO_PERMISSION, as Java's
// PullMessageProcessor refuses them); the others are kept and served for tools.

import (
	"fmt"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/store"
)

// refuseGroupWrite refuses a subscription-group change on a replica that is not its group's
// master: a slave's groups are its master's, copied every MetaSyncInterval.
func (b *Broker) refuseGroupWrite(req *codec.Command) *codec.Command {
	if b.repl == nil || b.master() != nil {
		return nil
	}
	return codec.NewResponse(req, codec.ServiceNotAvailable, fmt.Sprintf(
		"broker %s/%d is a %s: subscription groups are changed on the group's master, and its slaves copy them", b.cfg.BrokerName, b.cfg.BrokerID, b.role.String()))
}

// checkSubscriptionGroup says what is wrong with a configuration an admin sent.
func checkSubscriptionGroup(c codec.SubscriptionGroupConfig) error {
	switch {
	case !store.ValidTopicName(c.GroupName):
		return fmt.Errorf("group name %q: want 1..127 of letters, digits, %%, |, _ and -", c.GroupName)
	case c.RetryQueueNums < 0 || c.RetryQueueNums > store.MaxQueueNums:
		return fmt.Errorf("retryQueueNums %d outside 0..%d", c.RetryQueueNums, store.MaxQueueNums)
	case c.RetryMaxTimes < -1:
		return fmt.Errorf("retryMaxTimes %d below -1", c.RetryMaxTimes)
	case c.BrokerID < 0 || c.WhichBrokerWhenConsumeSlowly < 0:
		return fmt.Errorf("brokerId %d and whichBrokerWhenConsumeSlowly %d must not be negative", c.BrokerID, c.WhichBrokerWhenConsumeSlowly)
	}
	return nil
}

// handleUpdateSubscriptionGroup serves UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200): the body is
// the group's whole configuration (Java's SubscriptionGroupConfig), on disk before the answer.
func (b *Broker) handleUpdateSubscriptionGroup(req *codec.Command) *codec.Command {
	if resp := b.refuseGroupWrite(req); resp != nil {
		return resp
	}
	c, err := codec.DecodeSubscriptionGroup(req.Body)
	if err == nil {
		err = checkSubscriptionGroup(c)
	}
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, "update subscription group: "+err.Error())
	}
	if err := b.store.PutSubscriptionGroup(c); err != nil {
		b.log.Error("update subscription group", "group", c.GroupName, "err", err)
		return codec.NewResponse(req, codec.SystemError, "update subscription group "+c.GroupName+": "+err.Error())
	}
	b.log.Info("subscription group updated", "group", c.GroupName, "consumeEnable", c.ConsumeEnable,
		"retryMaxTimes", c.RetryMaxTimes, "retryQueueNums", c.RetryQueueNums)
	return codec.NewResponse(req, codec.Success, "")
}

// handleDeleteSubscriptionGroup serves DELETE_SUBSCRIPTIONGROUP (207): the group's
// configuration goes and, with cleanOffset (4.x: removeOffset), its committed offsets too (on
// disk at the next offset flush), as Java's AdminBrokerProcessor.deleteSubscriptionGroup. A
// group with live consumers or remaining offsets is still listed, with the defaults.
func (b *Broker) handleDeleteSubscriptionGroup(req *codec.Command) *codec.Command {
	if resp := b.refuseGroupWrite(req); resp != nil {
		return resp
	}
	h, err := codec.DecodeHeader[codec.DeleteSubscriptionGroupHeader](req)
	if err != nil {
		return codec.NewResponse(req, codec.SystemError, "delete subscription group: "+err.Error())
	}
	existed, err := b.store.DeleteSubscriptionGroup(h.GroupName)
	if err != nil {
		b.log.Error("delete subscription group", "group", h.GroupName, "err", err)
		return codec.NewResponse(req, codec.SystemError, "delete subscription group "+h.GroupName+": "+err.Error())
	}
	dropped := 0
	if h.CleanOffset {
		dropped = b.store.DropGroupOffsets(h.GroupName)
		b.forgetGroupRate(h.GroupName)
	}
	b.log.Info("subscription group deleted", "group", h.GroupName, "configured", existed, "offsetsDropped", dropped)
	return codec.NewResponse(req, codec.Success, "")
}

// groupConsumeDisabled is the remark refusing a pull of a group an admin disabled, "" if the
// group may consume.
func (b *Broker) groupConsumeDisabled(group string) string {
	if c, ok := b.store.SubscriptionGroup(group); ok && !c.ConsumeEnable {
		return "subscription group no permission, " + group
	}
	return ""
}
