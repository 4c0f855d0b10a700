package codec

// Request codes (RocketMQ 4.x RequestCode) that Sluice serves or sends.
const (
	ReqSendMessage             int16 = 10
	ReqPullMessage             int16 = 11
	ReqQueryConsumerOffset     int16 = 14
	ReqUpdateConsumerOffset    int16 = 15
	ReqUpdateAndCreateTopic    int16 = 17
	ReqSearchOffsetByTimestamp int16 = 29
	ReqGetMaxOffset            int16 = 30
	ReqGetMinOffset            int16 = 31
	ReqHeartBeat               int16 = 34
	ReqUnregisterClient        int16 = 35
	ReqConsumerSendMsgBack     int16 = 36
	ReqGetConsumerListByGroup  int16 = 38
	ReqLockBatchMQ             int16 = 41
	ReqUnlockBatchMQ           int16 = 42
	ReqRegisterBroker          int16 = 103
	ReqUnregisterBroker        int16 = 104
	ReqGetRouteInfoByTopic     int16 = 105
	ReqGetAllTopicListFromNS   int16 = 206
	ReqSendBatchMessage        int16 = 320
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
	SubscriptionNotExist    int16 = 24
)
