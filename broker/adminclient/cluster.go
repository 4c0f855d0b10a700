package adminclient

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// ClusterBroker is one broker a name server routes: its cluster, group, id as registered (0
// for a group's master) and address.
type ClusterBroker struct {
	Cluster, Group string
	ID             int64
	Addr           string
}

// Master reports whether the broker is registered as its group's master (id 0).
func (b ClusterBroker) Master() bool { return b.ID == route.MasterID }

// ClusterList returns every broker the name servers route (GET_BROKER_CLUSTER_INFO of the
// first that answers), sorted by cluster, group and id.
func (c *Client) ClusterList() ([]ClusterBroker, error) {
	resp, err := c.askNameServers(codec.ReqGetBrokerClusterInfo, nil)
	if err != nil {
		return nil, err
	}
	var ci route.ClusterInfo
	if err := json.Unmarshal(resp.Body, &ci); err != nil {
		return nil, fmt.Errorf("cluster list: bad body: %w", err)
	}
	var out []ClusterBroker
	for group, bd := range ci.BrokerAddrTable {
		for idText, addr := range bd.BrokerAddrs {
			id, err := strconv.ParseInt(idText, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("cluster list: broker id %q of %s: %w", idText, group, err)
			}
			out = append(out, ClusterBroker{Cluster: bd.Cluster, Group: group, ID: id, Addr: addr})
		}
	}
	slices.SortFunc(out, func(a, b ClusterBroker) int {
		return cmp.Or(strings.Compare(a.Cluster, b.Cluster), strings.Compare(a.Group, b.Group), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}
