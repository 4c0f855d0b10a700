package codec

// Request codes (RocketMQ 4.x RequestCode) that Sluice serves or sends.
const (
	ReqSendMessage             int16 = 10
	ReqPullMessage             int16 = 11
	ReqQueryMessage            int16 = 12
	ReqQueryConsumerOffset     int16 = 14
	ReqUpdateConsumerOffset    int16 = 15
	ReqUpdateAndCreateTopic    int16 = 17
	ReqGetAllTopicConfig       int16 = 21
	ReqSearchOffsetByTimestamp int16 = 29
	ReqGetMaxOffset            int16 = 30
	ReqGetMinOffset            int16 = 31
	ReqViewMessageByID         int16 = 33
	ReqHeartBeat               int16 = 34
	ReqUnregisterClient        int16 = 35
	ReqConsumerSendMsgBack     int16 = 36
	ReqEndTransaction          int16 = 37
	ReqGetConsumerListByGroup  int16 = 38
	ReqCheckTransactionState   int16 = 39
	ReqLockBatchMQ             int16 = 41
	ReqUnlockBatchMQ           int16 = 42
	ReqGetAllConsumerOffset    int16 = 43
	ReqGetAllDelayOffset       int16 = 45
	ReqCheckClientConfig       int16 = 46
	ReqRegisterBroker          int16 = 103
	ReqUnregisterBroker        int16 = 104
	ReqGetRouteInfoByTopic     int16 = 105
	ReqGetBrokerClusterInfo    int16 = 106
	ReqGetAllSubscriptionGroup int16 = 201
	ReqGetAllTopicListFromNS   int16 = 206
	ReqDeleteTopicInBroker     int16 = 215
	ReqDeleteTopicInNamesrv    int16 = 216
	ReqSendMessageV2           int16 = 310
	ReqSendBatchMessage        int16 = 320
	ReqSendReplyMessage        int16 = 324
	ReqSendReplyMessageV2      int16 = 325
	// ReqPushReplyMessageToClient is broker to client: a reply message for a request the
	// client made (docs/protocol.md, "Request and reply").
	ReqPushReplyMessageToClient int16 = 326
	// The connection and offset-reset admin requests (Java's AdminBrokerProcessor and
	// Broker2Client): a group's connected clients, and a reset of its offsets to a time that
	// the broker pushes to them with ReqResetConsumerClientOffset (broker to client, oneway).
	ReqGetConsumerConnectionList int16 = 203
	ReqGetProducerConnectionList int16 = 204
	ReqResetConsumerClientOffset int16 = 220
	ReqInvokeBrokerToResetOffset int16 = 222
)

// CodeOutOfRange is the Code of a decoded command whose header code does not fit in 16 bits
// (Command.WideCode holds it). No node serves it, so such a request is answered
// REQUEST_CODE_NOT_SUPPORTED, as the Java broker answers a code it has no processor for.
const CodeOutOfRange int16 = -1 << 15

// Controller request codes. 1001, 1003 and 1004 are RocketMQ 5's controller codes
// (CONTROLLER_ALTER_SYNC_STATE_SET, CONTROLLER_REGISTER_BROKER, CONTROLLER_GET_REPLICA_INFO),
// though Sluice's bodies are its own (see package controller). ReqControllerRaftMessage is
// Sluice's own: one raft message between controller members.
const (
	ReqControllerAlterInSyncSet  int16 = 1001
	ReqControllerBrokerHeartbeat int16 = 1003
	ReqControllerGetReplicaInfo  int16 = 1004
	ReqControllerRaftMessage     int16 = 1050
	// ReqControllerGetMetadataInfo (1005) and ReqControllerGetSyncStateData (1006) are
	// RocketMQ 5's admin views of the controller, with its header and body shapes
	// (GetMetaDataResponseHeader, BrokerReplicasInfo: see body_conn.go).
	ReqControllerGetMetadataInfo  int16 = 1005
	ReqControllerGetSyncStateData int16 = 1006
)

// Replication request codes, Sluice's own (package brokernode, replica.go): a slave's
// handshake with its master (their epoch tables) and its fetches of the master's commit log.
const (
	ReqReplicaHandshake int16 = 1201
	ReqReplicaFetch     int16 = 1202
)

// Response codes (RocketMQ 4.x ResponseCode).
const (
	Success                 int16 = 0
	SystemError             int16 = 1
	SystemBusy              int16 = 2
	RequestCodeNotSupported int16 = 3
	FlushDiskTimeout        int16 = 10
	MessageIllegal          int16 = 13
	ServiceNotAvailable     int16 = 14
	NoPermission            int16 = 16
	TopicNotExist           int16 = 17
	PullNotFound            int16 = 19
	PullRetryImmediately    int16 = 20
	PullOffsetMoved         int16 = 21
	QueryNotFound           int16 = 22
	SubscriptionParseFailed int16 = 23
	SubscriptionNotExist    int16 = 24
	// SubscriptionGroupNotExist: an offset reset for a group the broker knows nothing of.
	SubscriptionGroupNotExist int16 = 26
	// ConsumerNotOnline: no client of the group is connected (GET_CONSUMER_CONNECTION_LIST;
	// a RocketMQ 4 broker's INVOKE_BROKER_TO_RESET_OFFSET).
	ConsumerNotOnline int16 = 206
)

// Controller response codes (RocketMQ 5 ResponseCode).
const (
	ControllerFencedMasterEpoch int16 = 2000
	ControllerFencedInSyncEpoch int16 = 2001
	ControllerInvalidMaster     int16 = 2002
	ControllerInvalidReplicas   int16 = 2003
	ControllerInvalidRequest    int16 = 2005
	ControllerBrokerNotAlive    int16 = 2006
	ControllerNotLeader         int16 = 2007
)
