// Token refresh on a live connection with @stomp/stompjs: SEND
// /app/auth.refresh with a new token, the token_expiring warning, and the
// ERROR at expiry (API.md, "Token refresh on a live connection").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import { wsBase, token, shortToken, WAIT } from './helpers.mjs';

const factory = () => new WebSocket(`${wsBase}/ws`, ['v12.stomp', 'v11.stomp', 'v10.stomp']);

function withTimeout(promise, what, ms = WAIT) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

// open connects with tok; errors collects ERROR frames.
async function open(tok) {
  const errors = [];
  let onError = () => {};
  const client = new Client({ webSocketFactory: factory, connectHeaders: { Authorization: `Bearer ${tok}` }, reconnectDelay: 0 });
  const connected = new Promise((resolve, reject) => {
    client.onConnect = resolve;
    client.onStompError = (f) => { errors.push(f); onError(f); reject(new Error(`ERROR ${f.headers.message}`)); };
  });
  client.activate();
  await withTimeout(connected, 'CONNECTED');
  const nextError = (ms) => withTimeout(new Promise((resolve) => {
    if (errors.length) resolve(errors.shift()); else onError = () => resolve(errors.shift());
  }), 'ERROR frame', ms);
  return { client, nextError };
}

function events(client) {
  const queue = [];
  const waiters = [];
  const id = `sub-${Math.random().toString(36).slice(2)}`;
  const subscribed = new Promise((resolve) => client.watchForReceipt(id, resolve));
  client.subscribe('/user/queue/events', (m) => {
    const w = waiters.shift();
    if (w) w(m); else queue.push(m);
  }, { receipt: id });
  return {
    subscribed: withTimeout(subscribed, 'SUBSCRIBE receipt'),
    next: () => withTimeout(new Promise((resolve) => {
      const m = queue.shift();
      if (m) resolve(m); else waiters.push(resolve);
    }), 'MESSAGE on /user/queue/events'),
  };
}

function refresh(client, tok, receiptId) {
  const done = withTimeout(new Promise((resolve) => client.watchForReceipt(receiptId, resolve)), `RECEIPT ${receiptId}`);
  client.publish({ destination: '/app/auth.refresh', headers: { Authorization: `Bearer ${tok}`, receipt: receiptId } });
  return done;
}

test('refresh before expiry keeps the connection; token_expiring warns first', async () => {
  const user = `alice-refresh-${Date.now()}`;
  const shortTok = shortToken(user, 3); // expires in 3 s: the warning is due at once
  const expSec = JSON.parse(Buffer.from(shortTok.split('.')[1], 'base64url')).exp;
  const { client } = await open(shortTok);
  try {
    const ev = events(client);
    await ev.subscribed;
    const warning = JSON.parse((await ev.next()).body);
    assert.equal(warning.type, 'token_expiring');
    assert.equal(Date.parse(warning.expiresAt), expSec * 1000);

    await refresh(client, await token(user), 'refresh-1');
    // Past the first token's expiry the connection still answers.
    await new Promise((r) => setTimeout(r, expSec * 1000 - Date.now() + 1500));
    assert.ok(client.connected, 'closed at the old expiry despite the refresh');
    const probe = withTimeout(new Promise((resolve) => client.watchForReceipt('probe', resolve)), 'RECEIPT probe');
    client.subscribe('/user/queue/errors', () => {}, { receipt: 'probe' });
    await probe;
  } finally {
    await client.deactivate();
  }
});

test('without a refresh the connection ends with ERROR token expired', async () => {
  const user = `bob-expiry-${Date.now()}`;
  const { client, nextError } = await open(shortToken(user, 2));
  try {
    const f = await nextError(6000);
    assert.equal(f.headers.message, 'token expired');
  } finally {
    await client.deactivate();
  }
});

test("a refresh with another user's token gets ERROR and a close", async () => {
  const user = `carol-refresh-${Date.now()}`;
  const { client, nextError } = await open(await token(user));
  try {
    client.publish({ destination: '/app/auth.refresh', headers: { Authorization: `Bearer ${await token(`mallory-${Date.now()}`)}` } });
    const f = await nextError();
    assert.equal(f.headers.message, 'unauthorized');
  } finally {
    await client.deactivate();
  }
});
