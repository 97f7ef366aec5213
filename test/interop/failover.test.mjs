// Through deploy/local-cluster.sh only (INTEROP_CLUSTER names its script):
// an instance dies; the clients it held reconnect through nginx to the other
// one and, subscribing with since-seq, get exactly the messages they missed.
// Also: the service sees the client's address, not nginx's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import SockJS from 'sockjs-client';
import { base, wsBase, api, token } from './helpers.mjs';

const script = process.env.INTEROP_CLUSTER;
const skip = script ? false : 'needs INTEROP_CLUSTER (deploy/local-cluster.sh)';
const cluster = (...args) => execFileSync(script, args, { stdio: ['ignore', 'pipe', 'inherit'] }).toString().trim();

function until(cond, what, ms = 20_000) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`timed out: ${what}`));
      setTimeout(tick, 25);
    };
    tick();
  });
}

// device is one of bob's clients: it follows the session topic and, after
// every (re)connect, subscribes with since-seq = the last seq it has.
function device(name, factory, tok, sessionId) {
  const d = { name, seqs: [], dupes: 0, connects: 0, closes: 0, replayed: 0 };
  const client = new Client({
    webSocketFactory: factory,
    connectHeaders: { Authorization: `Bearer ${tok}` },
    reconnectDelay: 1000,
    heartbeatIncoming: 5000,
    heartbeatOutgoing: 5000,
  });
  client.onConnect = () => {
    d.connects++;
    const since = d.seqs.length ? Math.max(...d.seqs) : 0;
    let live = false;
    const receipt = `sub-${d.connects}`;
    client.watchForReceipt(receipt, () => { live = true; });
    client.subscribe(`/topic/session.${sessionId}`, (msg) => {
      const ev = JSON.parse(msg.body);
      if (ev.type !== 'message') return;
      if (d.seqs.includes(ev.message.seq)) { d.dupes++; return; }
      d.seqs.push(ev.message.seq);
      if (!live && d.connects > 1) d.replayed++; // before the RECEIPT: a since-seq replay
    }, { 'since-seq': String(since), receipt });
  };
  client.onWebSocketClose = () => { d.closes++; };
  client.activate();
  d.client = client;
  return d;
}

test('an instance dies: clients reconnect through nginx and resume with since-seq', { skip, timeout: 120_000 }, async () => {
  const alice = `alice-failover-${Date.now()}`;
  const bob = `bob-failover-${Date.now()}`;
  const [ta, tb] = await Promise.all([token(alice), token(bob)]);
  const { id: sessionId } = await api('POST', '/api/chat/sessions', ta, { participants: [bob] });
  const ws = () => new WebSocket(`${wsBase}/ws`, ['v12.stomp']);
  const sockjs = (transport) => () =>
    new SockJS(`${base}/ws?access_token=${encodeURIComponent(tb)}`, null, { transports: [transport], sessionId: 16 });
  // Raw WebSockets are spread by least_conn; SockJS sessions by their id.
  const devices = [
    device('websocket-1', ws, tb, sessionId),
    device('websocket-2', ws, tb, sessionId),
    device('xhr-streaming-1', sockjs('xhr-streaming'), tb, sessionId),
    device('xhr-streaming-2', sockjs('xhr-streaming'), tb, sessionId),
    device('xhr-polling', sockjs('xhr-polling'), tb, sessionId),
    device('sockjs-websocket', sockjs('websocket'), tb, sessionId),
  ];
  try {
    await until(() => devices.every((d) => d.connects === 1), 'all devices connected');
    const send = (n) => api('POST', `/api/chat/sessions/${sessionId}/messages`, ta,
      { content: `m${n}`, clientMessageId: `failover-${n}` });
    for (const n of [1, 2, 3]) await send(n);
    await until(() => devices.every((d) => d.seqs.length === 3), 'messages 1-3 on every device');

    cluster('kill', '1');
    // Sent while the killed instance's clients are still away (they wait a
    // second before reconnecting): they can only get these by replay.
    for (const n of [4, 5, 6]) await send(n);

    const hit = devices.filter((d) => d.closes > 0);
    await until(() => devices.every((d) => d.seqs.length === 6), 'messages 1-6 on every device', 30_000)
      .catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(devices.map(({ client, ...d }) => d))}`); });
    assert.ok(hit.length > 0, 'no device was on the killed instance');
    for (const d of devices) {
      assert.deepEqual([...d.seqs].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6], d.name);
      assert.equal(d.dupes, 0, `${d.name}: duplicates`);
    }
    for (const d of hit) {
      assert.ok(d.connects >= 2, `${d.name} lost its connection and did not reconnect`);
      assert.ok(d.replayed > 0, `${d.name} reconnected but got nothing by since-seq replay`);
    }
    console.log(`devices on the killed instance: ${hit.map((d) => d.name).join(', ')}`);
  } finally {
    await Promise.all(devices.map((d) => d.client.deactivate()));
    cluster('restart', '1');
  }
});

test('the service logs the client address from nginx, not nginx\'s', { skip }, async () => {
  // 127.0.0.2 is this machine too, but not the trusted proxy (127.0.0.1).
  const rid = `addr-${Date.now()}`;
  const status = await new Promise((resolve, reject) => {
    const req = https.get(`${base}/api/chat/unread?probe=${rid}`, {
      localAddress: '127.0.0.2',
      headers: { Authorization: 'Bearer not-a-token', 'X-Forwarded-For': '203.0.113.9' },
    }, (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', reject);
  });
  assert.equal(status, 401);
  const dir = cluster('dir');
  let line;
  await until(() => {
    for (const n of [1, 2]) {
      const found = readFileSync(`${dir}/instance-${n}.log`, 'utf8').split('\n')
        .find((l) => l.includes(rid) && l.includes('"http request"'));
      if (found) { line = JSON.parse(found); return true; }
    }
    return false;
  }, 'the access log line', 5000);
  assert.equal(line.remote_addr, '127.0.0.2:0', 'the client, not the forged X-Forwarded-For nor nginx');
  assert.match(line.peer_addr, /^127\.0\.0\.1:\d+$/);
});
