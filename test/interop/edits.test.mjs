// Edits, deletes and membership changes as @stomp/stompjs clients see them
// (API.md, "Additions"): /app/chat.edit and /app/chat.delete, the edit,
// delete and members events, and since-seq replaying current state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, base, token } from './helpers.mjs';
import { connectWS, subscribe, publishJSON } from './stompclient.mjs';

const parse = (msg) => JSON.parse(msg.body);

// nextOfType skips events of other types (read receipts, the session event).
async function nextOfType(inbox, type) {
  for (;;) {
    const ev = parse(await inbox.next());
    if (ev.type === type) return ev;
  }
}

test('edit and delete over STOMP reach the topic and /user/queue/messages', async () => {
  const tag = Date.now();
  const a = `alice-edit-${tag}`;
  const b = `bob-edit-${tag}`;
  const [ta, tb] = await Promise.all([token(a), token(b)]);
  const session = await api('POST', '/api/chat/sessions', ta, { participants: [b], title: 'edits' });
  const alice = await connectWS(ta);
  const bob = await connectWS(tb);
  try {
    const topic = await subscribe(bob, `/topic/session.${session.id}`);
    const queue = await subscribe(bob, '/user/queue/messages');
    const bobErrors = await subscribe(bob, '/user/queue/errors');

    await publishJSON(alice, '/app/chat.send', { sessionId: session.id, content: 'helo' }, 's1');
    for (const inbox of [topic, queue]) {
      const ev = await nextOfType(inbox, 'message');
      assert.equal(ev.message.seq, 1);
    }

    await publishJSON(alice, '/app/chat.edit', { sessionId: session.id, seq: 1, content: 'hello' }, 'e1');
    for (const inbox of [topic, queue]) {
      const msg = await inbox.next();
      const ev = parse(msg);
      assert.equal(ev.type, 'edit');
      assert.equal(ev.sessionId, session.id);
      assert.equal(ev.message.seq, 1);
      assert.equal(ev.message.content, 'hello');
      assert.ok(ev.message.editedAt);
      assert.equal(msg.headers.seq, undefined, 'edit events carry no seq header');
    }

    // Bob may not edit Alice's message: a problem with the REST code and status.
    bob.publish({
      destination: '/app/chat.edit',
      headers: { 'content-type': 'application/json', receipt: 'bad' },
      body: JSON.stringify({ sessionId: session.id, seq: 1, content: 'mine now' }),
    });
    const problem = await bobErrors.next();
    assert.equal(problem.headers['receipt-id'], 'bad');
    assert.equal(parse(problem).code, 'forbidden');
    assert.equal(parse(problem).status, 403);

    await publishJSON(alice, '/app/chat.delete', { sessionId: session.id, seq: 1 }, 'd1');
    for (const inbox of [topic, queue]) {
      const ev = parse(await inbox.next());
      assert.deepEqual(ev, { type: 'delete', sessionId: session.id, seq: 1 });
    }

    // A recovering subscriber replays the message as it is now: a tombstone.
    const replay = await subscribe(bob, `/topic/session.${session.id}`, { 'since-seq': '0' });
    const ev = await nextOfType(replay, 'message');
    assert.equal(ev.message.seq, 1);
    assert.equal(ev.message.deleted, true);
    assert.equal(ev.message.content, '');

    // Editing the tombstone over REST: 409 message_deleted.
    const res = await fetch(`${base}/api/chat/sessions/${session.id}/messages/1`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${ta}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ content: 'back' }),
    });
    assert.equal(res.status, 409);
    assert.equal((await res.json()).code, 'message_deleted');
  } finally {
    await alice.deactivate();
    await bob.deactivate();
  }
});

test('a removed member gets members, then removed, then silence', async () => {
  const tag = Date.now();
  const [a, b, c] = [`alice-mem-${tag}`, `bob-mem-${tag}`, `carol-mem-${tag}`];
  const [ta, tb, tc] = await Promise.all([token(a), token(b), token(c)]);
  const session = await api('POST', '/api/chat/sessions', ta, { participants: [b], title: 'members' });
  const bob = await connectWS(tb);
  const carol = await connectWS(tc);
  try {
    const topic = await subscribe(bob, `/topic/session.${session.id}`);
    const carolEvents = await subscribe(carol, '/user/queue/events');

    const added = await api('POST', `/api/chat/sessions/${session.id}/participants`, ta, { userIds: [c] });
    assert.deepEqual(added.participants.map((p) => [p.userId, p.role]).sort(),
      [[a, 'owner'], [b, 'member'], [c, 'member']].sort());
    const sess = await nextOfType(carolEvents, 'session');
    assert.equal(sess.session.id, session.id);
    const joined = await nextOfType(topic, 'members');
    assert.deepEqual([joined.added, joined.removed, joined.by], [[c], [], a]);

    await api('DELETE', `/api/chat/sessions/${session.id}/participants/${b}`, ta);
    const members = parse(await topic.next());
    assert.deepEqual([members.type, members.removed, members.by], ['members', [b], a]);
    assert.deepEqual(parse(await topic.next()), { type: 'removed', sessionId: session.id });

    // Alice's next message reaches carol but not bob's old subscription.
    const carolTopic = await subscribe(carol, `/topic/session.${session.id}`);
    await api('POST', `/api/chat/sessions/${session.id}/messages`, ta, { content: 'bob is gone' });
    assert.equal((await nextOfType(carolTopic, 'message')).message.content, 'bob is gone');
    assert.equal(topic.pending(), 0);
  } finally {
    await bob.deactivate();
    await carol.deactivate();
  }
});
