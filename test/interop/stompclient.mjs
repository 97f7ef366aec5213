// Small @stomp/stompjs helpers for interop tests: connect, receipts, and an
// inbox per subscription. (stomp.test.mjs keeps its own copies.)
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import { wsBase, WAIT } from './helpers.mjs';

export function withTimeout(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), WAIT); }),
  ]).finally(() => clearTimeout(timer));
}

// connectWS activates a stompjs client over a raw WebSocket with the token
// in CONNECT and resolves once CONNECTED arrives.
export function connectWS(tok) {
  const client = new Client({
    webSocketFactory: () => new WebSocket(`${wsBase}/ws`, ['v12.stomp']),
    connectHeaders: { Authorization: `Bearer ${tok}` },
    reconnectDelay: 0,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
  });
  const connected = new Promise((resolve, reject) => {
    client.onConnect = resolve;
    client.onStompError = (frame) => reject(new Error(`ERROR ${frame.headers.message}: ${frame.body}`));
    client.onWebSocketClose = (evt) => reject(new Error(`closed before CONNECTED: ${evt?.code} ${evt?.reason}`));
  });
  client.activate();
  return withTimeout(connected, 'CONNECTED').then(() => {
    client.onWebSocketClose = () => {};
    return client;
  });
}

// receipt returns a promise for the RECEIPT of id (register before sending).
export function receipt(client, id) {
  return withTimeout(new Promise((resolve) => client.watchForReceipt(id, resolve)), `RECEIPT ${id}`);
}

// subscribe collects a subscription's messages; next() waits for the next
// one; it resolves once the SUBSCRIBE's RECEIPT arrived.
export async function subscribe(client, destination, headers = {}) {
  const queue = [];
  const waiters = [];
  const id = `sub-${Math.random().toString(36).slice(2)}`;
  const done = receipt(client, id);
  client.subscribe(destination, (msg) => {
    const w = waiters.shift();
    if (w) w(msg); else queue.push(msg);
  }, { ...headers, receipt: id });
  await done;
  return {
    next: () => withTimeout(new Promise((resolve) => {
      const m = queue.shift();
      if (m) resolve(m); else waiters.push(resolve);
    }), `MESSAGE on ${destination}`),
    pending: () => queue.length,
  };
}

// publishJSON sends a JSON body to an /app destination and waits for its RECEIPT.
export async function publishJSON(client, destination, body, receiptId) {
  const got = receipt(client, receiptId);
  client.publish({
    destination,
    headers: { 'content-type': 'application/json', receipt: receiptId },
    body: JSON.stringify(body),
  });
  return got;
}
