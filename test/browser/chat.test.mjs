// The web client in a real browser: two users in two browser contexts chat
// end to end (sign in, create a session, send, receive live, unread badge,
// typing, a message refused next to where it was typed, reconnect after the
// server restarts). Debian's chromium, driven by playwright-core.
//
// Against one of:
//   BROWSER_BIN=path/to/chat       the embedded default: the binary is started
//                                  here (in an empty directory, so with the
//                                  shipped chat.yaml and dev tokens) and
//                                  restarted by the test
//   BROWSER_CLUSTER=deploy/local-cluster.sh (started)
//                                  through nginx over https: the browser
//                                  trusts exactly the cluster's certificate,
//                                  users paste JWTs signed with its key, and
//                                  the restart kills and restarts both instances;
//                                  node itself needs NODE_EXTRA_CA_CERTS=<its cert.pem>
// BROWSER_ARTIFACTS: directory for screenshots (default ../artifacts).
// CHROMIUM: the browser (default /usr/bin/chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, sign, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const here = path.dirname(new URL(import.meta.url).pathname);
const artifacts = path.resolve(process.env.BROWSER_ARTIFACTS || path.join(here, '..', 'artifacts'));
const WAIT = 15_000;

// ---- the service under test ------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitHealthy(url, ms = 30_000) {
  const start = Date.now();
  for (;;) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
    } catch { /* not up yet */ }
    if (Date.now() - start > ms) throw new Error(`${url} not ready after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// embedded runs the binary as a new user would: no chat.yaml, dev tokens.
async function embedded(bin) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chat-browser-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let proc = null;
  let log = '';
  const up = async () => {
    proc = spawn(bin, ['-set', `server.addr=127.0.0.1:${port}`, '-set', 'log.level=warn'],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.on('data', (b) => { log += b; });
    proc.stderr.on('data', (b) => { log += b; });
    await waitHealthy(url);
  };
  const down = () => new Promise((resolve) => {
    if (!proc || proc.exitCode !== null) return resolve();
    proc.once('exit', resolve);
    proc.kill('SIGTERM');
  });
  await up();
  return {
    name: 'embedded default',
    url,
    devTokens: true,
    launchArgs: [],
    stop: down,
    start: up,
    token: async (user) => {
      const res = await fetch(`${url}/api/dev/token`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ userId: user }),
      });
      return (await res.json()).token;
    },
    close: async () => { await down(); rmSync(dir, { recursive: true, force: true }); },
    log: () => log,
  };
}

// throughCluster uses a started deploy/local-cluster.sh.
function throughCluster(script) {
  const run = (...args) => execFileSync(script, args, { stdio: ['ignore', 'pipe', 'inherit'] }).toString().trim();
  const dir = run('dir');
  if (process.env.NODE_EXTRA_CA_CERTS !== path.join(dir, 'tls', 'cert.pem')) {
    throw new Error(`run node with NODE_EXTRA_CA_CERTS=${dir}/tls/cert.pem: the test's own requests verify TLS too`);
  }
  const certPem = readFileSync(path.join(dir, 'tls', 'cert.pem'));
  // Chromium trusts this one key and nothing else it would otherwise refuse.
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  const pin = createHash('sha256').update(spki).digest('base64');
  const key = createPrivateKey(readFileSync(path.join(dir, 'jwt', 'private.pem')));
  const b64 = (x) => Buffer.from(x).toString('base64url');
  return {
    name: 'through nginx',
    url: 'https://127.0.0.1:8443',
    devTokens: false,
    launchArgs: [`--ignore-certificate-errors-spki-list=${pin}`],
    stop: async () => { run('kill', '1'); run('kill', '2'); },
    start: async () => { run('restart', '1'); run('restart', '2'); },
    token: async (user) => {
      const now = Math.floor(Date.now() / 1000);
      const input = `${b64(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'local' }))}.${b64(JSON.stringify({
        sub: user, iss: 'local-cluster', aud: 'chat-service', iat: now, exp: now + 3600,
      }))}`;
      return `${input}.${b64(sign('sha256', Buffer.from(input), key))}`;
    },
    close: async () => {},
    log: () => '',
  };
}

// ---- page helpers --------------------------------------------------------------

const id = (page, testId) => page.getByTestId(testId);

async function signIn(page, svc, user) {
  await page.goto(svc.url);
  if (svc.devTokens) {
    await id(page, 'login-user').fill(user);
  } else {
    await id(page, 'login-token').fill(await svc.token(user));
  }
  await id(page, 'login-submit').click();
  await connected(page);
}

async function connected(page, ms = WAIT) {
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="connection-status"]')?.textContent === 'connected', null, { timeout: ms });
}

async function reconnecting(page) {
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="connection-status"]')?.textContent === 'reconnecting', null, { timeout: WAIT });
}

const message = (page, seq) => page.locator(`[data-testid="message"][data-seq="${seq}"]`);

async function run(svc) {
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...svc.launchArgs],
  });
  const alice = `alice${Date.now() % 100000}`;
  const bob = `bob${Date.now() % 100000}`;
  const tag = svc.devTokens ? 'embedded' : 'nginx';
  const errors = [];
  try {
    // Alice on a desktop, Bob on a phone-sized screen.
    const ca = await browser.newContext({ viewport: { width: 1100, height: 720 } });
    const cb = await browser.newContext({ viewport: { width: 390, height: 760 }, hasTouch: true });
    const pa = await ca.newPage();
    const pb = await cb.newPage();
    for (const [who, p] of [['alice', pa], ['bob', pb]]) {
      p.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));
      p.on('console', (m) => { if (m.type() === 'error') errors.push(`${who} console: ${m.text()}`); });
    }

    await signIn(pa, svc, alice);
    await signIn(pb, svc, bob);

    // Alice starts a direct session; it appears in Bob's list by itself.
    await id(pa, 'new-session').fill(bob);
    await id(pa, 'new-session-submit').click();
    const itemA = id(pa, 'session-item');
    await itemA.first().waitFor({ timeout: WAIT });
    const sessionId = await itemA.first().getAttribute('data-session-id');
    assert.match(sessionId, /^[0-9a-f-]{36}$/);
    const itemB = pb.locator(`[data-testid="session-item"][data-session-id="${sessionId}"]`);
    await itemB.waitFor({ timeout: WAIT });

    // Alice writes; Bob, not in the conversation, sees an unread badge.
    await id(pa, 'composer').fill('Hi Bob! Lunch at noon?');
    await id(pa, 'send').click();
    await message(pa, 1).waitFor({ timeout: WAIT });
    await itemB.getByTestId('unread-badge').waitFor({ timeout: WAIT });
    assert.equal(await itemB.getByTestId('unread-badge').textContent(), '1');
    assert.match(await itemB.textContent(), /Lunch at noon/);

    // Bob opens it: the message is there and the badge goes.
    await itemB.click();
    await message(pb, 1).waitFor({ timeout: WAIT });
    assert.equal(await message(pb, 1).locator('.bubble').textContent(), 'Hi Bob! Lunch at noon?');
    await pb.locator('[data-testid="unread-badge"]').waitFor({ state: 'detached', timeout: WAIT });

    // Bob types: Alice sees it; he sends: Alice gets it live, in order.
    await id(pb, 'composer').pressSequentially('Sure, see you', { delay: 20 });
    await id(pa, 'typing').waitFor({ state: 'visible', timeout: WAIT });
    assert.match(await id(pa, 'typing').textContent(), new RegExp(`${bob}.*typing`, "i"));
    await id(pb, 'composer').press('Enter');
    await message(pa, 2).waitFor({ timeout: WAIT });
    assert.equal(await message(pa, 2).locator('.bubble').textContent(), 'Sure, see you');
    await id(pa, 'typing').waitFor({ state: 'hidden', timeout: WAIT });
    // Alice had the conversation open: no badge for her.
    assert.equal(await pa.locator('[data-testid="unread-badge"]').count(), 0);

    await pa.screenshot({ path: path.join(artifacts, `web-client-${tag}-alice.png`) });
    await pb.screenshot({ path: path.join(artifacts, `web-client-${tag}-bob-phone.png`) });

    // A message the service would refuse is marked where it was written.
    await id(pa, 'composer').fill('x'.repeat(5000));
    await id(pa, 'send').click();
    const failed = pa.locator('[data-testid="message"].failed');
    await failed.waitFor({ timeout: WAIT });
    assert.match(await failed.locator('[role="alert"]').textContent(), /Too long/);
    await failed.getByRole('button', { name: 'Retry' }).waitFor();

    // The server restarts: both show it, both come back by themselves, and
    // what was sent meanwhile arrives without a reload.
    await svc.stop();
    await Promise.all([reconnecting(pa), reconnecting(pb)]);
    await svc.start();
    const tok = await svc.token(alice);
    // nginx answers 502 for a few seconds after a full outage (it marked
    // both instances failed): retry, safely, with the same clientMessageId.
    let status = 0;
    for (let i = 0; i < 50 && status !== 201 && status !== 200; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 200));
      const res = await fetch(`${svc.url}/api/chat/sessions/${sessionId}/messages`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${tok}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ content: 'sent while you were reconnecting', clientMessageId: `away-${tag}` }),
      });
      status = res.status;
      await res.arrayBuffer();
    }
    assert.ok(status === 201 || status === 200, `send during reconnect: ${status}`);
    await Promise.all([connected(pa, 30_000), connected(pb, 30_000)]);
    await message(pb, 3).waitFor({ timeout: WAIT });
    await message(pa, 3).waitFor({ timeout: WAIT });

    await id(pb, 'composer').fill('Back online');
    await id(pb, 'send').click();
    await message(pa, 4).waitFor({ timeout: WAIT });
    assert.equal(await message(pa, 4).locator('.bubble').textContent(), 'Back online');
    // Each message shown once, in order.
    const seqs = await pa.locator('[data-testid="message"][data-seq]').evaluateAll(
      (els) => els.map((e) => Number(e.dataset.seq)));
    assert.deepEqual(seqs, [1, 2, 3, 4]);

    await pa.screenshot({ path: path.join(artifacts, `web-client-${tag}-after-restart.png`) });

    // A burst past the per-user rate limit (burst 40): the service refuses
    // the rest on /user/queue/errors; each refusal shows next to its message,
    // and Retry sends it again with the same clientMessageId, stored once.
    await failed.getByRole('button', { name: 'Discard' }).click();
    await failed.waitFor({ state: 'detached', timeout: WAIT });
    // 100: past the burst even if a reconnect sent them over REST, spread
    // over two instances with a budget each.
    await connected(pa);
    await pa.evaluate(() => {
      const c = document.querySelector('[data-testid="composer"]');
      for (let i = 1; i <= 100; i++) {
        c.value = `burst ${i}`;
        c.form.requestSubmit();
      }
    });
    await pa.waitForFunction(() => document.querySelectorAll('[data-testid="message"].pending').length === 0,
      null, { timeout: WAIT });
    const refused = pa.locator('[data-testid="message"].failed');
    const nRefused = await refused.count();
    assert.ok(nRefused > 0 && nRefused < 100, `refused ${nRefused} of 100`);
    assert.match(await refused.first().locator('[role="alert"]').textContent(), /rate|many|limit/i);
    const retried = await refused.first().locator('.bubble').textContent();
    await new Promise((r) => setTimeout(r, 2500)); // the budget refills
    await refused.first().getByRole('button', { name: 'Retry' }).click();
    await pa.waitForFunction((text) => [...document.querySelectorAll('[data-testid="message"][data-seq] .bubble')]
      .filter((b) => b.textContent === text).length === 1, retried, { timeout: WAIT });
    assert.equal(await refused.count(), nRefused - 1);
    // More history, within the budget again, for the paging below.
    await new Promise((r) => setTimeout(r, 1500));
    await pa.evaluate(() => {
      const c = document.querySelector('[data-testid="composer"]');
      for (let i = 1; i <= 20; i++) {
        c.value = `more ${i}`;
        c.form.requestSubmit();
      }
    });
    await pa.waitForFunction(() => document.querySelectorAll('[data-testid="message"].pending').length === 0,
      null, { timeout: WAIT });
    assert.equal(await refused.count(), nRefused - 1, 'sends within the budget were refused');
    const stored = 4 + 100 - nRefused + 1 + 20;
    await message(pa, stored).waitFor({ timeout: WAIT });

    // History pages in on scroll: Bob reloads (his sign-in is kept for the
    // tab), sees the latest page only, scrolls up and reaches message 1.
    await message(pb, stored).waitFor({ timeout: WAIT });
    await pb.reload();
    await connected(pb);
    await itemB.click();
    await message(pb, stored).waitFor({ timeout: WAIT });
    assert.equal(await message(pb, 1).count(), 0, 'the first page should not reach message 1');
    for (let i = 0; i < 5 && await message(pb, 1).count() === 0; i++) {
      await id(pb, 'composer').evaluate(() => { document.getElementById('messages').scrollTop = 0; });
      await pb.waitForTimeout(400);
    }
    await message(pb, 1).waitFor({ timeout: WAIT });
    const all = await pb.locator('[data-testid="message"][data-seq]').evaluateAll(
      (els) => els.map((e) => Number(e.dataset.seq)));
    assert.deepEqual(all, Array.from({ length: stored }, (_, i) => i + 1), 'every message once, in order');

    // A group session with a title reaches every participant's list.
    await id(pa, 'new-session').fill(`${bob}, carol${Date.now() % 100000}`);
    await pa.getByLabel('Group title (optional)').fill('Lunch crew');
    await id(pa, 'new-session-submit').click();
    // Bob is in a conversation on his phone: back to the list to see it.
    await pb.getByRole('button', { name: 'Back to conversations' }).click();
    await pb.locator('[data-testid="session-item"]', { hasText: 'Lunch crew' }).waitFor({ timeout: WAIT });
    assert.equal(await pb.locator('[data-testid="session-item"]').count(), 2);

    // In the group: Alice edits and deletes her message and Bob sees both
    // live; Alice adds Dave and Bob sees him among the members; Bob leaves:
    // the group goes from his list and he from Alice's member line.
    const group = pb.locator('[data-testid="session-item"]', { hasText: 'Lunch crew' });
    const bubble = (page, seq) => page.evaluate((n) =>
      document.querySelector(`[data-testid="message"][data-seq="${n}"] .bubble`)?.textContent, seq);
    await id(pa, 'composer').fill('Lunch at 1?');
    await id(pa, 'send').click();
    await message(pa, 1).waitFor({ timeout: WAIT });
    await group.click();
    await message(pb, 1).waitFor({ timeout: WAIT });
    pa.once('dialog', (d) => d.accept('Lunch at 2?'));
    await message(pa, 1).getByRole('button', { name: 'Edit' }).click();
    await pb.waitForFunction(() => document.querySelector('[data-testid="message"][data-seq="1"] .bubble')
      ?.textContent === 'Lunch at 2?', null, { timeout: WAIT });
    assert.match(await message(pb, 1).locator('.meta').textContent(), /edited/);
    pa.once('dialog', (d) => d.accept());
    await message(pa, 1).getByRole('button', { name: 'Delete' }).click();
    await pb.locator('[data-testid="message"][data-seq="1"].deleted').waitFor({ timeout: WAIT });
    assert.equal(await bubble(pb, 1), 'Message deleted');
    assert.equal(await bubble(pa, 1), 'Message deleted');
    const dave = `dave${Date.now() % 100000}`;
    pa.once('dialog', (d) => d.accept(dave));
    await pa.getByRole('button', { name: 'Add people' }).click();
    // (names may come capitalized from the profile provider)
    const members = (u) => document.getElementById('thread-members').textContent.toLowerCase().includes(u.toLowerCase());
    await pb.waitForFunction(members, dave, { timeout: WAIT });
    pb.once('dialog', (d) => d.accept());
    await pb.getByRole('button', { name: 'Leave' }).click();
    await group.waitFor({ state: 'detached', timeout: WAIT });
    await pa.waitForFunction((u) => !document.getElementById('thread-members').textContent.toLowerCase().includes(u.toLowerCase()), bob, { timeout: WAIT });
    await pa.screenshot({ path: path.join(artifacts, `web-client-${tag}-group.png`) });
    assert.deepEqual(errors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|502|503|Failed to load resource/.test(e)), []);
  } finally {
    await browser.close();
  }
}

const bin = process.env.BROWSER_BIN;
const cluster = process.env.BROWSER_CLUSTER;

test('two users chat in the browser: embedded default', { skip: bin ? false : 'needs BROWSER_BIN', timeout: 180_000 }, async () => {
  const svc = await embedded(bin);
  try {
    await run(svc);
  } catch (e) {
    console.log(svc.log());
    throw e;
  } finally {
    await svc.close();
  }
});

test('two users chat in the browser: through nginx', { skip: cluster ? false : 'needs BROWSER_CLUSTER', timeout: 180_000 }, async () => {
  await run(throughCluster(cluster));
});
