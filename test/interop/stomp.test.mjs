// Interop of browser STOMP clients with chat-service: @stomp/stompjs over a
// raw WebSocket (the `ws` package stands in for the browser's WebSocket)
// and over sockjs-client with each of its transports.
//
// INTEROP_URL is the service's base URL (http://127.0.0.1:PORT, or the
// https URL of deploy/local-cluster.sh); see helpers.mjs for tokens and TLS.
// interop_test.go starts one and runs these tests; run.sh does both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import SockJS from 'sockjs-client';
import { base, wsBase, api, token, WAIT } from './helpers.mjs';

// users makes two fresh users and a direct session between them.
async function users(tag) {
  const a = `alice-${tag}-${Date.now()}`;
  const b = `bob-${tag}-${Date.now()}`;
  const [ta, tb] = await Promise.all([token(a), token(b)]);
  const session = await api('POST', '/api/chat/sessions', ta, { participants: [b] });
  return { a, b, ta, tb, sessionId: session.id };
}

function withTimeout(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), WAIT); }),
  ]).finally(() => clearTimeout(timer));
}

// connect activates a stompjs client and resolves once CONNECTED arrives.
function connect(factory, connectHeaders = {}) {
  const client = new Client({
    webSocketFactory: factory,
    connectHeaders,
    reconnectDelay: 0,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
  });
  const connected = new Promise((resolve, reject) => {
    client.onConnect = (frame) => resolve(frame);
    client.onStompError = (frame) => reject(new Error(`ERROR ${frame.headers.message}: ${frame.body}`));
    client.onWebSocketClose = (evt) => reject(new Error(`closed before CONNECTED: ${evt?.code} ${evt?.reason}`));
  });
  client.activate();
  return withTimeout(connected, 'CONNECTED').then((frame) => {
    client.onWebSocketClose = () => {};
    return { client, frame };
  });
}

// receipt returns a promise for the RECEIPT of id (register before sending).
function receipt(client, id) {
  return withTimeout(new Promise((resolve) => client.watchForReceipt(id, resolve)), `RECEIPT ${id}`);
}

// inbox collects a subscription's messages; next() waits for the next one.
function subscribe(client, destination, headers = {}) {
  const queue = [];
  const waiters = [];
  client.subscribe(destination, (msg) => {
    const w = waiters.shift();
    if (w) w(msg); else queue.push(msg);
  }, headers);
  return {
    next: () => withTimeout(new Promise((resolve) => {
      const m = queue.shift();
      if (m) resolve(m); else waiters.push(resolve);
    }), `MESSAGE on ${destination}`),
  };
}

async function subscribeConfirmed(client, destination, headers = {}) {
  const id = `sub-${Math.random().toString(36).slice(2)}`;
  const done = receipt(client, id);
  const inbox = subscribe(client, destination, { ...headers, receipt: id });
  await done;
  return inbox;
}

// conversation: bob subscribes, alice sends with a receipt, bob receives on
// the session topic and on his message queue.
async function conversation(tag, factoryFor) {
  const u = await users(tag);
  const bob = await connect(factoryFor(u.tb), { Authorization: `Bearer ${u.tb}` });
  const alice = await connect(factoryFor(u.ta), { Authorization: `Bearer ${u.ta}` });
  try {
    assert.equal(bob.frame.headers['user-name'], u.b);
    assert.ok(['1.2', '1.1', '1.0'].includes(bob.frame.headers.version));
    const topic = await subscribeConfirmed(bob.client, `/topic/session.${u.sessionId}`);
    const queue = await subscribeConfirmed(bob.client, '/user/queue/messages');

    const sent = receipt(alice.client, 'send-1');
    alice.client.publish({
      destination: '/app/chat.send',
      headers: { 'content-type': 'application/json', receipt: 'send-1' },
      body: JSON.stringify({ sessionId: u.sessionId, content: `hello over ${tag} ✓`, clientMessageId: 'c-1' }),
    });
    await sent;

    for (const inbox of [topic, queue]) {
      const msg = await inbox.next();
      const ev = JSON.parse(msg.body);
      assert.equal(ev.type, 'message');
      assert.equal(ev.message.content, `hello over ${tag} ✓`);
      assert.equal(ev.message.senderId, u.a);
      assert.equal(msg.headers['session-id'], u.sessionId);
      assert.equal(msg.headers.seq, String(ev.message.seq));
    }

    // A failing SEND: a problem on /user/queue/errors, the connection stays.
    const errors = await subscribeConfirmed(alice.client, '/user/queue/errors');
    alice.client.publish({
      destination: '/app/chat.send',
      headers: { 'content-type': 'application/json', receipt: 'send-2' },
      body: JSON.stringify({ sessionId: u.sessionId, content: '', clientMessageId: 'c-2' }),
    });
    const problem = await errors.next();
    assert.equal(problem.headers['receipt-id'], 'send-2');
    const p = JSON.parse(problem.body);
    assert.equal(p.code, 'invalid_content');
    assert.equal(p.clientMessageId, 'c-2');
    assert.ok(alice.client.connected);
  } finally {
    await alice.client.deactivate();
    await bob.client.deactivate();
  }
}

const rawWebSocket = (tok) => () => new WebSocket(`${wsBase}/ws`, ['v12.stomp', 'v11.stomp', 'v10.stomp']);
const sockjs = (transport) => (tok) => () =>
  new SockJS(`${base}/ws?access_token=${encodeURIComponent(tok)}`, null, { transports: [transport], sessionId: 16 });

test('raw WebSocket, token in CONNECT', () => conversation('ws', rawWebSocket));

test('raw WebSocket, token in access_token', () =>
  conversation('ws-query', (tok) => () => new WebSocket(`${wsBase}/ws?access_token=${encodeURIComponent(tok)}`, ['v12.stomp'])));

test('SockJS websocket', () => conversation('sockjs-websocket', sockjs('websocket')));
test('SockJS xhr-streaming', () => conversation('sockjs-xhr-streaming', sockjs('xhr-streaming')));
test('SockJS xhr-polling', () => conversation('sockjs-xhr-polling', sockjs('xhr-polling')));

test('split large frames are re-assembled', async () => {
  const u = await users('split');
  const bob = await connect(rawWebSocket(u.tb), { Authorization: `Bearer ${u.tb}` });
  const alice = await connect(rawWebSocket(u.ta), { Authorization: `Bearer ${u.ta}` });
  alice.client.splitLargeFrames = true;
  alice.client.maxWebSocketChunkSize = 512;
  try {
    const topic = await subscribeConfirmed(bob.client, `/topic/session.${u.sessionId}`);
    const content = 'x'.repeat(3000);
    const sent = receipt(alice.client, 'big');
    alice.client.publish({
      destination: '/app/chat.send',
      headers: { 'content-type': 'application/json', receipt: 'big' },
      body: JSON.stringify({ sessionId: u.sessionId, content }),
    });
    await sent;
    assert.equal(JSON.parse((await topic.next()).body).message.content, content);
  } finally {
    await alice.client.deactivate();
    await bob.client.deactivate();
  }
});

test('since-seq replays what a reconnecting client missed', async () => {
  const u = await users('since');
  const alice = await connect(rawWebSocket(u.ta), { Authorization: `Bearer ${u.ta}` });
  try {
    for (const n of [1, 2, 3]) {
      const sent = receipt(alice.client, `m${n}`);
      alice.client.publish({
        destination: '/app/chat.send',
        headers: { 'content-type': 'application/json', receipt: `m${n}` },
        body: JSON.stringify({ sessionId: u.sessionId, content: `m${n}` }),
      });
      await sent;
    }
    const bob = await connect(rawWebSocket(u.tb), { Authorization: `Bearer ${u.tb}` });
    try {
      const topic = subscribe(bob.client, `/topic/session.${u.sessionId}`, { 'since-seq': '1' });
      // Sends are accepted into the command queue before they are stored:
      // wait until both are there, replayed or live.
      const seqs = [];
      while (seqs.length < 2) {
        const ev = JSON.parse((await topic.next()).body);
        if (ev.type === 'message') seqs.push(ev.message.seq);
      }
      assert.deepEqual(seqs, [2, 3]);
    } finally {
      await bob.client.deactivate();
    }
  } finally {
    await alice.client.deactivate();
  }
});

test('an invalid CONNECT token gets an ERROR frame', async () => {
  await assert.rejects(connect(rawWebSocket(''), { Authorization: 'Bearer not-a-jwt' }), /ERROR unauthorized/);
});
