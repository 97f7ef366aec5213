// chat-service web client: plain JavaScript, no build step. REST (/api/chat/*)
// loads sessions and history; STOMP over WebSocket (SockJS as a fallback)
// brings live messages, edits and deletes, membership changes, typing and
// read events. Everything a user typed or
// received is rendered with textContent, never as HTML.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const PAGE = 50;
  const TYPING_SHOW_MS = 4000;    // how long a typing event keeps the indicator up
  const TYPING_SEND_MS = 2000;    // at most one typing event per this interval
  const SEND_TIMEOUT_MS = 15000;  // no RECEIPT nor problem by then: failed, retry offered
  const STORAGE_KEY = 'chat.auth';

  let cfg = { devTokens: false, sockjs: true, typing: true, maxMessageBytes: 4096, presence: false };
  const auth = { token: '', userId: '', dev: false };

  // sessions: id -> Session (API shape, kept current by events).
  const sessions = new Map();
  let sessionsCursor = null;

  // thread: the open conversation.
  let thread = null; // { id, msgs: Map seq -> Message, els: Map seq -> li, minSeq, maxSeq, hasMore, loading, sub }
  const pending = new Map(); // clientMessageId -> { sessionId, content, state, error, timer, el }
  const typers = new Map();  // userId -> timeout id, for the open session
  const online = new Set();  // contacts online now (presence)

  let client = null;
  let everConnected = false;
  let failedAttempts = 0;    // connection attempts in a row that never reached CONNECTED
  let renewNeeded = false;
  let lastTypingSent = 0;
  let readTimer = null;
  let unreadTimer = null;

  // ---- utilities -------------------------------------------------------

  const params = new URLSearchParams(location.search);
  const transport = params.get('transport') || 'auto'; // auto | websocket | sockjs

  function el(tag, props = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c) e.append(c);
    return e;
  }

  function randomId(prefix) {
    const b = new Uint8Array(9);
    crypto.getRandomValues(b);
    return prefix + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function byteLength(s) { return new TextEncoder().encode(s).length; }

  function jwtSubject(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const json = decodeURIComponent(Array.from(atob(part), (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''));
      return JSON.parse(json).sub || '';
    } catch {
      return '';
    }
  }

  function timeOf(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    const today = new Date().toDateString() === d.toDateString();
    return today ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
      : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  }

  class ApiError extends Error {
    constructor(status, code, detail) {
      super(detail || code || `HTTP ${status}`);
      this.status = status;
      this.code = code;
    }
  }

  // api calls the REST API with the current token. A 401 renews a
  // development token once; otherwise it signs the user out.
  async function api(method, path, body) {
    for (let attempt = 0; ; attempt++) {
      let res;
      try {
        res = await fetch(path, {
          method,
          headers: {
            Authorization: `Bearer ${auth.token}`,
            ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
          },
          body: body !== undefined ? JSON.stringify(body) : undefined,
        });
      } catch {
        throw new ApiError(0, 'network', 'The server cannot be reached.');
      }
      if (res.status === 401) {
        if (attempt === 0 && await renewToken()) continue;
        signOut('Your sign-in is no longer valid. Sign in again.');
        throw new ApiError(401, 'unauthorized', 'Signed out.');
      }
      const text = await res.text();
      let data = null;
      try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: reported below */ }
      if (!res.ok) {
        const retry = res.headers.get('Retry-After');
        const detail = (data && (data.detail || data.title)) || `HTTP ${res.status}`;
        throw new ApiError(res.status, data && data.code, retry ? `${detail} (retry in ${retry} s)` : detail);
      }
      return data;
    }
  }

  async function devToken(userId) {
    const res = await fetch('/api/dev/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ userId }),
    });
    const data = await res.json().catch(() => null);
    if (!res.ok || !data || !data.token) {
      throw new ApiError(res.status, data && data.code, (data && data.detail) || `HTTP ${res.status}`);
    }
    return data.token;
  }

  // renewToken gets a fresh development token for the same user (a
  // restarted server may have a new signing key). Pasted JWTs cannot be renewed.
  async function renewToken() {
    if (!auth.dev || !cfg.devTokens) return false;
    try {
      auth.token = await devToken(auth.userId);
      saveAuth();
      return true;
    } catch {
      return false;
    }
  }

  function saveAuth() { sessionStorage.setItem(STORAGE_KEY, JSON.stringify(auth)); }

  // ---- sign-in ---------------------------------------------------------

  function showLogin(message) {
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-dev').hidden = !cfg.devTokens;
    $('login-jwt').hidden = cfg.devTokens;
    $('login-error').textContent = message || '';
    (cfg.devTokens ? $('login-user') : $('login-token')).focus();
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const submit = $('login-submit');
    $('login-error').textContent = '';
    submit.disabled = true;
    try {
      if (cfg.devTokens) {
        const userId = $('login-user').value.trim();
        if (!/^[A-Za-z0-9._@:-]{1,128}$/.test(userId)) {
          throw new Error('A user id is 1-128 letters, digits or . _ @ : -');
        }
        Object.assign(auth, { token: await devToken(userId), userId, dev: true });
      } else {
        const token = $('login-token').value.trim();
        const userId = jwtSubject(token);
        if (!userId) throw new Error('That does not look like a JWT with a subject (sub).');
        Object.assign(auth, { token, userId, dev: false });
        const res = await fetch('/api/chat/unread', { headers: { Authorization: `Bearer ${token}` } });
        if (res.status === 401) throw new Error('The service refused this token (expired, or signed with another key).');
        if (!res.ok) throw new Error(`The service answered ${res.status}.`);
      }
      saveAuth();
      await start();
    } catch (e) {
      $('login-error').textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(STORAGE_KEY);
    if (client) { const c = client; client = null; c.deactivate(); }
    auth.token = '';
    sessions.clear();
    thread = null;
    pending.clear();
    $('sessions').replaceChildren();
    showLogin(message);
  }

  // ---- sessions --------------------------------------------------------

  function activity(s) { return (s.lastMessage && s.lastMessage.createdAt) || s.createdAt || ''; }

  function sessionName(s) {
    if (s.title) return s.title;
    const others = (s.participants || []).filter((p) => p.userId !== auth.userId);
    return others.map((p) => p.displayName || p.userId).join(', ') || auth.userId;
  }

  function me(s) { return (s.participants || []).find((p) => p.userId === auth.userId); }

  // isOnline: someone else in the session has a connection open.
  function isOnline(s) {
    return (s.participants || []).some((p) => p.userId !== auth.userId && online.has(p.userId));
  }

  // loadPresence asks who of the listed sessions' participants is online
  // (at most 100 ids per request); presence events keep it current after.
  async function loadPresence() {
    if (!cfg.presence) return;
    const ids = new Set();
    for (const s of sessions.values()) {
      for (const p of s.participants || []) if (p.userId !== auth.userId) ids.add(p.userId);
    }
    const all = [...ids];
    for (let i = 0; i < all.length; i += 100) {
      const res = await api('GET', `/api/chat/presence?userIds=${all.slice(i, i + 100).map(encodeURIComponent).join(',')}`);
      for (const u of res.users) if (u.online) online.add(u.userId); else online.delete(u.userId);
    }
    renderSessions();
  }

  // refreshToken replaces the live connection's token before it expires
  // (token_expiring). Only development tokens can be renewed here.
  async function refreshToken() {
    const mine = client;
    if (!(await renewToken()) || !mine || !mine.connected) return;
    mine.publish({ destination: '/app/auth.refresh', headers: { Authorization: `Bearer ${auth.token}` } });
  }

  async function loadSessions(more) {
    const q = more && sessionsCursor ? `&cursor=${encodeURIComponent(sessionsCursor)}` : '';
    const page = await api('GET', `/api/chat/sessions?limit=${PAGE}${q}`);
    if (!more) sessions.clear();
    for (const s of page.sessions) sessions.set(s.id, s);
    sessionsCursor = page.nextCursor;
    $('more-sessions').hidden = !sessionsCursor;
    renderSessions();
  }

  function upsertSession(s) {
    const old = sessions.get(s.id);
    if (old && old.lastSeq > s.lastSeq) return; // an older snapshot than what events brought
    if (old) {
      // Some snapshots (the session event) carry no profiles: keep the names we had.
      for (const p of s.participants || []) {
        const had = (old.participants || []).find((x) => x.userId === p.userId);
        if (had && !p.displayName && had.displayName) p.displayName = had.displayName;
      }
    }
    sessions.set(s.id, s);
    renderSessions();
  }

  function renderSessions() {
    const list = $('sessions');
    const focused = document.activeElement && document.activeElement.closest('[data-session-id]');
    const focusedId = focused && focused.dataset.sessionId;
    const sorted = [...sessions.values()].sort((a, b) =>
      activity(b).localeCompare(activity(a)) || b.id.localeCompare(a.id));
    list.replaceChildren(...sorted.map((s) => {
      const last = s.lastMessage;
      const lastText = last
        ? `${last.senderId === auth.userId ? 'You' : (last.sender && last.sender.displayName) || last.senderId}: ${last.deleted ? 'Message deleted' : last.content}`
        : 'No messages yet';
      const unread = s.unread > 0 && !(thread && thread.id === s.id && document.visibilityState === 'visible');
      const btn = el('button', {
        type: 'button', class: 'session', 'data-testid': 'session-item', 'data-session-id': s.id,
        'aria-current': thread && thread.id === s.id ? 'true' : 'false',
        'aria-label': `${sessionName(s)}${unread ? `, ${s.unread} unread` : ''}`,
        onclick: () => openSession(s.id),
      },
      el('span', { class: 'name', text: sessionName(s) },
        isOnline(s) ? el('span', { class: 'online', 'data-testid': 'online', title: 'online', text: ' ●' }) : null),
      unread ? el('span', { class: 'badge', 'data-testid': 'unread-badge', text: String(s.unread) }) : null,
      el('span', { class: 'last', text: lastText }));
      return el('li', {}, btn);
    }));
    if (focusedId) {
      const again = list.querySelector(`[data-session-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
  }

  async function onNewSession(ev) {
    ev.preventDefault();
    const err = $('new-session-error');
    err.textContent = '';
    const ids = $('new-session').value.split(',').map((x) => x.trim()).filter(Boolean);
    const title = $('new-session-title').value.trim();
    if (ids.length === 0) {
      err.textContent = 'Name at least one user id.';
      return;
    }
    $('new-session-submit').disabled = true;
    try {
      const s = await api('POST', '/api/chat/sessions', { participants: ids, ...(title ? { title } : {}) });
      upsertSession(s);
      $('new-session').value = '';
      $('new-session-title').value = '';
      await openSession(s.id);
    } catch (e) {
      err.textContent = e.message;
    } finally {
      $('new-session-submit').disabled = false;
    }
  }

  // ---- the open conversation ------------------------------------------

  async function openSession(id) {
    const s = sessions.get(id);
    if (!s) return;
    if (thread && thread.sub) thread.sub.unsubscribe();
    typers.forEach((t) => clearTimeout(t));
    typers.clear();
    renderTyping();
    thread = { id, msgs: new Map(), els: new Map(), minSeq: 0, maxSeq: 0, hasMore: false, loading: false, sub: null };
    $('app').classList.add('in-thread');
    $('empty').hidden = true;
    $('thread').hidden = false;
    $('thread-title').textContent = sessionName(s);
    $('messages').replaceChildren();
    showMembers();
    for (const p of pending.values()) if (p.sessionId === id) renderPending(p);
    renderSessions();
    const mine = thread;
    try {
      const page = await api('GET', `/api/chat/sessions/${id}/messages?limit=${PAGE}`);
      if (thread !== mine) return;
      addMessages(page.messages);
      thread.hasMore = page.hasMore;
      scrollToBottom();
      subscribeThread();
      await fillViewport();
      scheduleRead();
    } catch (e) {
      if (thread === mine) showThreadNote(`Could not load messages: ${e.message}`);
    }
    $('composer').focus();
  }

  function showThreadNote(text) {
    $('messages').prepend(el('li', { class: 'history-note', text }));
  }

  // subscribeThread follows the open session's topic from the last seq it
  // shows: the service replays what came after it, then goes live.
  function subscribeThread() {
    if (!thread || !client || !client.connected) return;
    if (thread.sub) { try { thread.sub.unsubscribe(); } catch { /* the connection is gone */ } }
    thread.sub = client.subscribe(`/topic/session.${thread.id}`, onEvent, { 'since-seq': String(thread.maxSeq) });
  }

  function addMessages(list) {
    for (const m of list) addMessage(m);
  }

  function addMessage(m) {
    if (!thread || m.sessionId !== thread.id) return false;
    if (m.clientMessageId && m.senderId === auth.userId) dropPending(m.clientMessageId);
    const fresh = !thread.msgs.has(m.seq);
    thread.msgs.set(m.seq, m);
    const li = messageElement(m);
    const old = thread.els.get(m.seq);
    if (old) {
      old.replaceWith(li);
    } else {
      let next = null;
      for (const [seq, e] of thread.els) if (seq > m.seq && (!next || seq < Number(next.dataset.seq))) next = e;
      const list = $('messages');
      if (next) list.insertBefore(li, next);
      else list.insertBefore(li, list.querySelector('.message.pending, .message.failed'));
    }
    thread.els.set(m.seq, li);
    thread.maxSeq = Math.max(thread.maxSeq, m.seq);
    thread.minSeq = thread.minSeq ? Math.min(thread.minSeq, m.seq) : m.seq;
    return fresh;
  }

  function messageElement(m) {
    const mine = m.senderId === auth.userId;
    const who = mine ? 'You' : (m.sender && m.sender.displayName) || m.senderId;
    const meta = `${who} · ${timeOf(m.createdAt)}${m.editedAt && !m.deleted ? ' · edited' : ''}`;
    const li = el('li', { class: `message${mine ? ' mine' : ''}${m.deleted ? ' deleted' : ''}`, 'data-testid': 'message', 'data-seq': m.seq },
      el('p', { class: 'meta', text: meta }),
      el('div', { class: 'bubble', text: m.deleted ? 'Message deleted' : m.content }));
    if (mine && !m.deleted) {
      li.append(el('p', { class: 'actions' },
        el('button', { type: 'button', class: 'link', text: 'Edit', onclick: () => editMessage(m) }),
        el('button', { type: 'button', class: 'link', text: 'Delete', onclick: () => deleteMessage(m) })));
    }
    return li;
  }

  // ---- edits, deletes and membership ----------------------------------

  async function editMessage(m) {
    const content = prompt('Edit message', m.content);
    if (content === null || content === m.content) return;
    try {
      addMessage(await api('PATCH', `/api/chat/sessions/${m.sessionId}/messages/${m.seq}`, { content }));
    } catch (e) { showThreadNote(`Could not edit: ${e.message}`); }
  }

  async function deleteMessage(m) {
    if (!confirm('Delete this message for everyone?')) return;
    try {
      await api('DELETE', `/api/chat/sessions/${m.sessionId}/messages/${m.seq}`);
      markDeleted(m.sessionId, m.seq);
    } catch (e) { showThreadNote(`Could not delete: ${e.message}`); }
  }

  // onEdit applies an edit (ev.message) or a delete (ev.seq) to what is shown.
  function onEdit(ev) {
    const s = sessions.get(ev.sessionId);
    if (ev.type === 'delete') { markDeleted(ev.sessionId, ev.seq); return; }
    if (s && s.lastMessage && s.lastMessage.seq === ev.message.seq) { s.lastMessage = ev.message; renderSessions(); }
    if (thread && thread.id === ev.sessionId && thread.msgs.has(ev.message.seq)) addMessage(ev.message);
  }

  function markDeleted(sessionId, seq) {
    const s = sessions.get(sessionId);
    if (s && s.lastMessage && s.lastMessage.seq === seq) {
      s.lastMessage = { ...s.lastMessage, content: '', deleted: true };
      renderSessions();
    }
    const m = thread && thread.id === sessionId && thread.msgs.get(seq);
    if (m) addMessage({ ...m, content: '', deleted: true });
  }

  async function addPeople() {
    const ids = (prompt('Add people (user ids, comma-separated)') || '').split(',').map((x) => x.trim()).filter(Boolean);
    if (!thread || ids.length === 0) return;
    try {
      upsertSession(await api('POST', `/api/chat/sessions/${thread.id}/participants`, { userIds: ids }));
      showMembers();
    } catch (e) { showThreadNote(`Could not add: ${e.message}`); }
  }

  async function leaveSession() {
    if (!thread || !confirm('Leave this conversation?')) return;
    const id = thread.id;
    try {
      await api('DELETE', `/api/chat/sessions/${id}/participants/${encodeURIComponent(auth.userId)}`);
      forgetSession(id);
    } catch (e) { showThreadNote(`Could not leave: ${e.message}`); }
  }

  function forgetSession(id) {
    sessions.delete(id);
    if (thread && thread.id === id) {
      if (thread.sub) { try { thread.sub.unsubscribe(); } catch { /* the connection is gone */ } }
      thread = null;
      $('thread').hidden = true;
      $('empty').hidden = false;
      $('app').classList.remove('in-thread');
    }
    renderSessions();
  }

  // onMembers refreshes a session whose participants changed; a 404 means
  // the user was removed from it.
  function onMembers(ev) {
    if ((ev.removed || []).includes(auth.userId)) { forgetSession(ev.sessionId); return; }
    api('GET', `/api/chat/sessions/${ev.sessionId}`).then((s) => {
      upsertSession(s);
      if (thread && thread.id === s.id) showMembers();
    }).catch((e) => { if (e.status === 404) forgetSession(ev.sessionId); });
  }

  function showMembers() {
    const s = thread && sessions.get(thread.id);
    if (!s) return;
    $('thread-members').textContent = (s.participants || [])
      .map((p) => (p.displayName || p.userId) + (p.role === 'owner' ? ' (owner)' : '')).join(', ');
    $('thread-actions').hidden = s.type !== 'group';
  }

  function nearBottom() {
    const l = $('messages');
    return l.scrollHeight - l.scrollTop - l.clientHeight < 80;
  }

  function scrollToBottom() { const l = $('messages'); l.scrollTop = l.scrollHeight; }

  async function loadOlder() {
    if (!thread || !thread.hasMore || thread.loading || !thread.minSeq) return;
    const mine = thread;
    thread.loading = true;
    const list = $('messages');
    const before = list.scrollHeight - list.scrollTop;
    try {
      const page = await api('GET', `/api/chat/sessions/${thread.id}/messages?limit=${PAGE}&beforeSeq=${thread.minSeq}`);
      if (thread !== mine) return;
      addMessages(page.messages);
      thread.hasMore = page.hasMore;
      list.scrollTop = list.scrollHeight - before; // keep what the user was looking at in place
    } catch (e) {
      showThreadNote(`Could not load older messages: ${e.message}`);
    } finally {
      mine.loading = false;
    }
  }

  // fillViewport pages back until the list scrolls or history ends.
  async function fillViewport() {
    const list = $('messages');
    for (let i = 0; i < 10 && thread && thread.hasMore && list.scrollHeight <= list.clientHeight; i++) {
      await loadOlder();
    }
  }

  // ---- read marks and unread counts -------------------------------------

  function scheduleRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(markRead, 250);
  }

  function markRead() {
    if (!thread || document.visibilityState !== 'visible') return;
    const s = sessions.get(thread.id);
    const self = s && me(s);
    const seq = thread.maxSeq;
    if (!s || !self || seq <= (self.lastReadSeq || 0)) {
      if (s && s.unread) { s.unread = 0; renderSessions(); }
      return;
    }
    self.lastReadSeq = seq;
    if (seq >= s.lastSeq) s.unread = 0;
    renderSessions();
    if (client && client.connected) {
      client.publish({
        destination: '/app/chat.read',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sessionId: s.id, seq }),
      });
    } else {
      api('POST', `/api/chat/sessions/${s.id}/read`, { seq }).catch(() => { /* the next visible message retries */ });
    }
  }

  // refreshUnread asks the service for exact counts (after another device read).
  function refreshUnread() {
    clearTimeout(unreadTimer);
    unreadTimer = setTimeout(async () => {
      try {
        const u = await api('GET', '/api/chat/unread');
        const counts = new Map(u.sessions.map((x) => [x.sessionId, x.unread]));
        for (const s of sessions.values()) s.unread = counts.get(s.id) || 0;
        renderSessions();
      } catch { /* counts stay as they were */ }
    }, 200);
  }

  // ---- sending ----------------------------------------------------------

  function onComposerKey(ev) {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $('composer-form').requestSubmit();
    }
  }

  function onComposerInput() {
    const c = $('composer');
    c.style.height = 'auto';
    c.style.height = `${c.scrollHeight}px`;
    if (!cfg.typing || !thread || !client || !client.connected || !c.value) return;
    const now = Date.now();
    if (now - lastTypingSent < TYPING_SEND_MS) return;
    lastTypingSent = now;
    client.publish({
      destination: '/app/chat.typing',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sessionId: thread.id }),
    });
  }

  function onSend(ev) {
    ev.preventDefault();
    const c = $('composer');
    const content = c.value;
    if (!thread || !content.trim()) return;
    c.value = '';
    onComposerInput();
    lastTypingSent = 0;
    const p = { clientMessageId: randomId('w-'), sessionId: thread.id, content, state: 'sending', error: '', timer: null, el: null };
    pending.set(p.clientMessageId, p);
    deliver(p);
    scrollToBottom();
  }

  // deliver sends p over STOMP when connected (the RECEIPT means it is
  // durably accepted), else over REST; a retry reuses its clientMessageId,
  // so the service stores it once whatever happened to earlier attempts.
  function deliver(p) {
    clearTimeout(p.timer);
    p.state = 'sending';
    p.error = '';
    renderPending(p);
    const size = byteLength(p.content);
    if (size > cfg.maxMessageBytes) {
      fail(p, `Too long: ${size} bytes, the limit is ${cfg.maxMessageBytes}.`);
      return;
    }
    const body = { sessionId: p.sessionId, content: p.content, clientMessageId: p.clientMessageId };
    if (client && client.connected) {
      const receipt = randomId('r-');
      client.watchForReceipt(receipt, () => {
        if (pending.get(p.clientMessageId) === p && p.state === 'sending') {
          p.state = 'accepted';
          renderPending(p);
        }
      });
      client.publish({
        destination: '/app/chat.send',
        headers: { 'content-type': 'application/json', receipt },
        body: JSON.stringify(body),
      });
      p.timer = setTimeout(() => {
        if (pending.get(p.clientMessageId) === p && p.state === 'sending') fail(p, 'No answer from the server.');
      }, SEND_TIMEOUT_MS);
    } else {
      api('POST', `/api/chat/sessions/${p.sessionId}/messages`, { content: p.content, clientMessageId: p.clientMessageId })
        .then((m) => onMessage(m))
        .catch((e) => fail(p, e.message));
    }
  }

  function fail(p, message) {
    clearTimeout(p.timer);
    if (pending.get(p.clientMessageId) !== p) return;
    p.state = 'failed';
    p.error = message;
    renderPending(p);
  }

  function dropPending(clientMessageId) {
    const p = pending.get(clientMessageId);
    if (!p) return;
    clearTimeout(p.timer);
    pending.delete(clientMessageId);
    if (p.el) p.el.remove();
  }

  function renderPending(p) {
    if (!thread || thread.id !== p.sessionId) { p.el = null; return; }
    const label = { sending: 'Sending…', accepted: 'Sent', failed: 'Not sent' }[p.state];
    const li = el('li', {
      class: `message mine ${p.state === 'failed' ? 'failed' : 'pending'}`,
      'data-testid': 'message', 'data-client-message-id': p.clientMessageId,
    },
    el('p', { class: 'meta', text: `You · ${label}` }),
    el('div', { class: 'bubble', text: p.content }),
    p.state === 'failed'
      ? el('p', { class: 'problem', role: 'alert' }, p.error + ' ',
        el('button', { type: 'button', class: 'link', onclick: () => deliver(p), text: 'Retry' }),
        el('button', { type: 'button', class: 'link', onclick: () => dropPending(p.clientMessageId), text: 'Discard' }))
      : null);
    if (p.el && p.el.isConnected) p.el.replaceWith(li);
    else $('messages').append(li);
    p.el = li;
  }

  // ---- live events --------------------------------------------------------

  function onMessage(m) {
    let s = sessions.get(m.sessionId);
    if (!s) {
      // A session we have not listed yet (its event came before the list).
      api('GET', `/api/chat/sessions/${m.sessionId}`).then(upsertSession).catch(() => {});
      addMessage(m);
      return;
    }
    const isNew = m.seq > (s.lastSeq || 0);
    if (isNew) {
      s.lastSeq = m.seq;
      s.lastMessage = m;
      const open = thread && thread.id === s.id && document.visibilityState === 'visible';
      if (m.senderId === auth.userId) {
        const self = me(s);
        if (self) self.lastReadSeq = Math.max(self.lastReadSeq || 0, m.seq);
      } else if (!open) {
        s.unread = (s.unread || 0) + 1;
      }
    }
    const atBottom = nearBottom();
    if (addMessage(m)) {
      if (atBottom || m.senderId === auth.userId) scrollToBottom();
      if (m.senderId !== auth.userId) typingStopped(m.senderId);
      scheduleRead();
    }
    if (isNew) renderSessions();
  }

  function onEvent(frame) {
    let ev;
    try { ev = JSON.parse(frame.body); } catch { return; }
    switch (ev.type) {
      case 'message':
        onMessage(ev.message);
        break;
      case 'read': {
        const s = sessions.get(ev.sessionId);
        if (!s) break;
        const p = (s.participants || []).find((x) => x.userId === ev.userId);
        if (p) p.lastReadSeq = Math.max(p.lastReadSeq || 0, ev.seq);
        if (ev.userId === auth.userId) {
          if (ev.seq >= s.lastSeq) { s.unread = 0; renderSessions(); } else refreshUnread();
        }
        break;
      }
      case 'presence':
        if (ev.online) online.add(ev.userId); else online.delete(ev.userId);
        renderSessions();
        break;
      case 'token_expiring':
        refreshToken();
        break;
      case 'typing':
        if (thread && ev.sessionId === thread.id && ev.userId !== auth.userId) typingStarted(ev.userId);
        break;
      case 'session':
        if (ev.session) upsertSession(ev.session);
        loadPresence().catch(() => {}); // new contacts: events only tell of changes
        break;
      case 'edit':
      case 'delete':
        onEdit(ev);
        break;
      case 'members':
        onMembers(ev);
        break;
      case 'removed':
        forgetSession(ev.sessionId);
        break;
      case 'resync':
        // Too much was missed for a replay: start again from the latest page.
        if (thread && ev.sessionId === thread.id) openSession(thread.id);
        break;
      default:
        break; // event types this client does not show
    }
  }

  function onProblem(frame) {
    let p;
    try { p = JSON.parse(frame.body); } catch { return; }
    const item = p.clientMessageId && pending.get(p.clientMessageId);
    const text = p.detail || p.title || p.code || 'Refused';
    if (item) {
      const retry = p.retryAfter ? ` Try again in ${p.retryAfter} s.` : '';
      fail(item, text + retry);
    } else if (thread) {
      showThreadNote(text);
    }
  }

  function typingStarted(userId) {
    clearTimeout(typers.get(userId));
    typers.set(userId, setTimeout(() => typingStopped(userId), TYPING_SHOW_MS));
    renderTyping();
  }

  function typingStopped(userId) {
    if (!typers.has(userId)) return;
    clearTimeout(typers.get(userId));
    typers.delete(userId);
    renderTyping();
  }

  function renderTyping() {
    const t = $('typing');
    const s = thread && sessions.get(thread.id);
    const names = [...typers.keys()].map((id) => {
      const p = s && (s.participants || []).find((x) => x.userId === id);
      return (p && p.displayName) || id;
    });
    t.textContent = names.length === 0 ? ''
      : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
    t.hidden = names.length === 0;
  }

  // ---- the STOMP connection -------------------------------------------

  function setStatus(connected) {
    const s = $('connection-status');
    s.textContent = connected ? 'connected' : 'reconnecting';
    s.classList.toggle('connected', connected);
  }

  function useSockJS() {
    if (transport === 'sockjs') return true;
    if (transport === 'websocket' || !cfg.sockjs || typeof SockJS === 'undefined') return false;
    return failedAttempts >= 2 && failedAttempts % 4 >= 2; // WebSocket twice, then SockJS twice, ...
  }

  function makeSocket() {
    if (useSockJS()) {
      // sockjs-client copies the query onto every transport URL.
      // The server refuses SockJS session ids shorter than 16 characters
      // (sockjs-client's default is 8): the id ties a session's requests together.
      return new SockJS(`/ws?access_token=${encodeURIComponent(auth.token)}`, null,
        { transports: ['websocket', 'xhr-streaming', 'xhr-polling'], sessionId: 16 });
    }
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return new WebSocket(`${scheme}//${location.host}/ws`, ['v12.stomp', 'v11.stomp', 'v10.stomp']);
  }

  function connect() {
    client = new StompJs.Client({
      webSocketFactory: makeSocket,
      heartbeatIncoming: 10000,
      heartbeatOutgoing: 10000,
      reconnectDelay: 500,
      maxReconnectDelay: 5000,
      reconnectTimeMode: StompJs.ReconnectionTimeMode.EXPONENTIAL,
      connectionTimeout: 10000,
      discardWebsocketOnCommFailure: true,
    });
    const mine = client;
    let connectedThisAttempt = false;
    client.beforeConnect = async () => {
      connectedThisAttempt = false;
      if (renewNeeded || failedAttempts === 3) {
        // Repeated failures may be a token the service no longer accepts:
        // a REST call renews a development token or signs the user out.
        renewNeeded = false;
        if (!(await renewToken())) await api('GET', '/api/chat/unread').catch(() => {});
      }
      if (client !== mine) { mine.deactivate(); return; }
      mine.connectHeaders = { Authorization: `Bearer ${auth.token}` };
    };
    client.onConnect = () => {
      connectedThisAttempt = true;
      failedAttempts = 0;
      setStatus(true);
      mine.subscribe('/user/queue/messages', onEvent);
      mine.subscribe('/user/queue/events', onEvent);
      mine.subscribe('/user/queue/errors', onProblem);
      subscribeThread();
      loadPresence().catch(() => {});
      if (everConnected) {
        // Back after a break: counts and last messages of the other sessions.
        loadSessions(false).catch(() => {});
        for (const p of pending.values()) if (p.state !== 'failed') deliver(p);
      }
      everConnected = true;
    };
    client.onStompError = (frame) => {
      const msg = (frame.headers && frame.headers.message) || '';
      if (/unauthori[sz]ed|token|expired/i.test(msg)) renewNeeded = true;
    };
    client.onWebSocketClose = () => {
      if (!connectedThisAttempt) failedAttempts++;
      connectedThisAttempt = false;
      if (thread) thread.sub = null;
      if (client === mine) setStatus(false);
    };
    client.activate();
  }

  async function start() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('me').textContent = `Signed in as ${auth.userId}`;
    setStatus(false);
    await loadSessions(false);
    connect();
  }

  // ---- wiring --------------------------------------------------------------

  async function main() {
    try {
      const res = await fetch('/client-config.json');
      if (res.ok) cfg = { ...cfg, ...(await res.json()) };
    } catch { /* defaults above */ }
    $('login-form').addEventListener('submit', onLogin);
    $('new-session-form').addEventListener('submit', onNewSession);
    $('composer-form').addEventListener('submit', onSend);
    $('composer').addEventListener('keydown', onComposerKey);
    $('composer').addEventListener('input', onComposerInput);
    $('messages').addEventListener('scroll', () => { if ($('messages').scrollTop < 80) loadOlder(); });
    $('more-sessions').addEventListener('click', () => loadSessions(true).catch(() => {}));
    $('logout').addEventListener('click', () => signOut(''));
    $('add-people').addEventListener('click', addPeople);
    $('leave').addEventListener('click', leaveSession);
    $('back').addEventListener('click', () => {
      $('app').classList.remove('in-thread');
      const b = thread && document.querySelector(`[data-session-id="${CSS.escape(thread.id)}"]`);
      if (b) b.focus();
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') { scheduleRead(); renderSessions(); }
    });

    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
    if (saved && saved.token && saved.userId) {
      Object.assign(auth, saved);
      try {
        await start();
        return;
      } catch {
        // fall through to the sign-in form
      }
    }
    showLogin('');
  }

  main();
})();
