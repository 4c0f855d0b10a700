'use strict';

// Drives the Node.js RocketMQ 4.x client ali-ons (unmodified, from the npm registry) against a
// plain name server, for cmd/sluice/compat_nodejs_test.go. Every outcome is one JSON object per
// line on stdout; ali-ons's own warnings and errors go to stderr. Exit status 0 means the
// script did what it was asked, anything else that it did not (the last line says why).
//
//   node client.js produce --namesrv ADDR --topic T --count N --prefix P
//                          [--tags A,B,...] [--keys] [--delay-level L]
//     sends N messages "P-0".."P-(N-1)" one at a time (SEND_MESSAGE_V2), tag i%len(tags),
//     keys "P-i-k1 P-i-k2" with --keys; prints {"event":"sent",...} per message, sentAt
//     taken just before the send.
//
//   node client.js consume --namesrv ADDR --topic T --group G --expect N
//                          [--subscription EXPR] [--broadcast] [--instance NAME]
//                          [--from first|last] [--settle-ms MS] [--timeout-ms MS]
//                          [--rebalance-ms MS]
//     a push consumer; prints {"event":"ready","queues":[{queueId,nextOffset}]} once its first
//     rebalance gave it queues (nextOffset: where each starts), {"event":"queues",...} after
//     each later rebalance that changed them (--rebalance-ms: ali-ons's rebalance period),
//     {"event":"pulled",...} per message a pull returned and {"event":"received",...} per
//     delivery to the handler; after N distinct bodies it waits settle-ms for duplicates,
//     closes (which commits its offsets to the broker in clustering mode), prints
//     {"event":"closed"} and exits 0. Without N distinct bodies within timeout-ms it prints
//     {"event":"timeout"} and exits 2.
//     NODECLIENT_DEBUG=1 in the environment prints ali-ons's info log on stderr.

const { Producer, Consumer, Message } = require('ali-ons');
const ConsumeFromWhere = require('ali-ons/lib/consumer/consume_from_where');

function parseArgs(argv) {
  const args = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      args._.push(a);
      continue;
    }
    const key = a.slice(2);
    if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
      args[key] = argv[++i];
    } else {
      args[key] = true;
    }
  }
  return args;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fail(why, err) {
  emit({ event: 'error', why, error: err ? String(err && err.stack || err) : undefined });
  process.exit(1);
}

// ali-ons asserts an HTTP client is given, and uses it only to look name servers up through
// onsAddr (Aliyun's address service). With nameSrv set it must never be called.
const noHTTP = {
  async request(url) {
    throw new Error(`ali-ons tried HTTP (${url}) although nameSrv is set`);
  },
};

// ali-ons logs through console.warn/error (stderr); info and debug only with NODECLIENT_DEBUG=1.
const debug = process.env.NODECLIENT_DEBUG === '1';
const logger = {
  info(...a) { if (debug) console.error('[ali-ons info]', ...a); },
  debug() {},
  warn(...a) { console.warn('[ali-ons warn]', ...a); },
  error(...a) { console.error('[ali-ons error]', ...a); },
};

function baseOptions(args) {
  if (!args.namesrv) fail('--namesrv is required');
  return {
    httpclient: noHTTP,
    nameSrv: args.namesrv,
    logger,
    // No accessKey/secretKey: ali-ons then signs nothing (lib/channel.js), as a plain
    // RocketMQ 4.x name server and broker expect.
  };
}

async function produce(args) {
  const count = Number(args.count);
  const tags = args.tags ? String(args.tags).split(',') : [];
  const delay = args['delay-level'] ? Number(args['delay-level']) : 0;
  const producer = new Producer(Object.assign(baseOptions(args), {
    producerGroup: args.group || `PG_${process.pid}`,
    instanceName: args.instance || `prod_${process.pid}`,
  }));
  producer.on('error', err => console.error('[producer error]', err && err.message));
  await producer.ready();
  for (let i = 0; i < count; i++) {
    const body = `${args.prefix}-${i}`;
    const tag = tags.length ? tags[i % tags.length] : null;
    const msg = tag ? new Message(args.topic, tag, body) : new Message(args.topic, body);
    const keys = args.keys ? [ `${body}-k1`, `${body}-k2` ] : null;
    if (keys) msg.keys = keys;
    if (delay) msg.delayTimeLevel = delay;
    const sentAt = Date.now();
    const res = await producer.send(msg);
    emit({
      event: 'sent', body, tag, keys: keys ? keys.join(' ') : null, delayLevel: delay, sentAt,
      status: res.sendStatus, msgId: res.msgId,
      queueId: Number(res.messageQueue && res.messageQueue.queueId), queueOffset: Number(res.queueOffset),
    });
  }
  await producer.close();
}

async function consume(args) {
  const expect = Number(args.expect);
  const settleMs = Number(args['settle-ms'] || 1000);
  const timeoutMs = Number(args['timeout-ms'] || 20000);
  const topic = args.topic;
  const consumer = new Consumer(Object.assign(baseOptions(args), {
    consumerGroup: args.group,
    instanceName: args.instance || `cons_${process.pid}`,
    isBroadcast: !!args.broadcast,
    consumeFromWhere: args.from === 'last' ? ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET :
      ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
    // Offsets go to the broker every second instead of every 5 (close commits them anyway).
    persistConsumerOffsetInterval: 1000,
    // ali-ons does not handle NOTIFY_CONSUMER_IDS_CHANGED: it rebalances on this timer only.
    rebalanceInterval: Number(args['rebalance-ms'] || 10000),
  }));
  // A new group has no committed offset: ali-ons's QUERY_CONSUMER_OFFSET then raises an
  // error event for QUERY_NOT_FOUND and starts from consumeFromWhere. Errors are logged, and
  // the Go test judges by what was delivered.
  consumer.on('error', err => console.error('[consumer error]', err && err.message));

  const seen = new Set();
  let done;
  const finished = new Promise(resolve => { done = resolve; });
  // The offset each queue of the topic starts from, as ali-ons computed it at rebalance (from
  // the broker's committed offset, else consumeFromWhere). Pulls move a queue's nextOffset on
  // at once, so it is recorded here rather than read back later.
  const startOffsets = new Map();
  const computePullFromWhere = consumer.computePullFromWhere.bind(consumer);
  consumer.computePullFromWhere = async mq => {
    const offset = await computePullFromWhere(mq);
    if (mq.topic === topic) startOffsets.set(mq.queueId, offset);
    return offset;
  };
  // What the broker answered each pull with, before ali-ons's own tag check drops messages
  // whose tag the subscription does not name: this shows the broker's filtering.
  const pullKernelImpl = consumer.pullKernelImpl.bind(consumer);
  consumer.pullKernelImpl = async (...a) => {
    const res = await pullKernelImpl(...a);
    for (const msg of res.msgFoundList || []) {
      emit({
        event: 'pulled', body: msg.body.toString(), tags: msg.tags || null, topic: msg.topic,
        queueId: Number(msg.queueId), queueOffset: Number(msg.queueOffset),
      });
    }
    return res;
  };
  let ready = false;
  consumer.on(`topic_${topic}_queue_changed`, () => {
    const queues = [];
    for (const { messageQueue } of consumer.processQueueTable.values()) {
      if (messageQueue.topic === topic) {
        queues.push({ queueId: messageQueue.queueId, nextOffset: startOffsets.get(messageQueue.queueId) });
      }
    }
    queues.sort((a, b) => a.queueId - b.queueId);
    emit({ event: ready ? 'queues' : 'ready', queues });
    ready = true;
  });
  consumer.subscribe(topic, args.subscription || '*', async msg => {
    const body = msg.body.toString();
    emit({
      event: 'received', body, tags: msg.tags || null, keys: msg.keys || null,
      msgId: msg.msgId, topic: msg.topic, queueId: Number(msg.queueId), queueOffset: Number(msg.queueOffset),
      reconsumeTimes: msg.reconsumeTimes, bornTimestamp: Number(msg.bornTimestamp),
      properties: msg.properties, at: Date.now(),
    });
    seen.add(body);
    if (seen.size >= expect) done();
  });
  const timer = setTimeout(() => {
    emit({ event: 'timeout', distinct: seen.size, expect });
    process.exit(2);
  }, timeoutMs);
  await finished;
  // Let the handler's return reach ali-ons's offset table, and catch late duplicates.
  await new Promise(r => setTimeout(r, settleMs));
  clearTimeout(timer);
  await consumer.close();
  emit({ event: 'closed' });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  switch (args._[0]) {
    case 'produce': await produce(args); break;
    case 'consume': await consume(args); break;
    default: fail(`unknown command ${args._[0]}`);
  }
  // ali-ons's inner default producer keeps timers and sockets: exit explicitly.
  process.exit(0);
}

main().catch(err => fail('exception', err));
