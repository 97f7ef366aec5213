// Shared by the interop tests: where the service is, how to call it and how
// to get tokens.
//
//   INTEROP_URL       base URL: http://127.0.0.1:PORT, or https://... (trust
//                     its certificate with NODE_EXTRA_CA_CERTS=cert.pem; TLS
//                     is verified, never switched off)
//   INTEROP_JWT_KEY   PEM private key: tokens are minted here, RS256 with
//                     kid INTEROP_JWT_KID, iss INTEROP_JWT_ISSUER and aud
//                     INTEROP_JWT_AUDIENCE (deploy/local-cluster.sh's
//                     identity-provider stand-in). Unset: the service's
//                     POST /api/dev/token (auth.dev.enabled) issues them.
//   INTEROP_HMAC_SECRET the service's auth.jwt.hmac_secret: with it (and no
//                     INTEROP_JWT_KEY), shortToken mints HS256 tokens here.
import assert from 'node:assert/strict';
import { createHmac, createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const base = process.env.INTEROP_URL;
if (!base) {
  throw new Error('INTEROP_URL is not set: run ./run.sh, or go test ./test/interop/');
}
export const wsBase = base.replace(/^http/, 'ws');
export const WAIT = 10_000;

export async function api(method, path, token, body) {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// mint signs an RS256 client JWT for userId, valid for ttl seconds.
export function mint(userId, ttl = 3600) {
  const key = createPrivateKey(readFileSync(process.env.INTEROP_JWT_KEY));
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', typ: 'JWT', kid: process.env.INTEROP_JWT_KID || 'local' };
  const claims = {
    sub: userId, iat: now, exp: now + ttl,
    ...(process.env.INTEROP_JWT_ISSUER ? { iss: process.env.INTEROP_JWT_ISSUER } : {}),
    ...(process.env.INTEROP_JWT_AUDIENCE ? { aud: process.env.INTEROP_JWT_AUDIENCE } : {}),
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
}

export const token = async (userId) => (process.env.INTEROP_JWT_KEY
  ? mint(userId)
  : (await api('POST', '/api/dev/token', null, { userId })).token);

// shortToken is a client JWT for userId that expires in ttl seconds (the
// dev issuer's tokens live for a day): RS256 with INTEROP_JWT_KEY, else
// HS256 with INTEROP_HMAC_SECRET.
export function shortToken(userId, ttl) {
  if (process.env.INTEROP_JWT_KEY) return mint(userId, ttl);
  const secret = process.env.INTEROP_HMAC_SECRET;
  if (!secret) throw new Error('short-lived tokens need INTEROP_JWT_KEY or INTEROP_HMAC_SECRET');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub: userId, iat: now, exp: now + ttl }))}`;
  return `${input}.${b64url(createHmac('sha256', secret).update(input).digest())}`;
}
