// A real OpenID Provider (panva/oidc-provider, OpenID-certified) for
// callvault's SSO tests. Started by scripts/test; tests may start their own.
//
//   node provider.mjs [--issuer-file FILE] [--port N]
//
// Listens on 127.0.0.1 (a free port unless --port) and prints one JSON line
// {"issuer": "http://127.0.0.1:PORT"} on stdout (and into FILE when given).
//
// What tests use besides the standard endpoints (discovery, authorization
// with PKCE/nonce/prompt/max_age, token, JWKS, userinfo, end_session,
// dynamic client registration at /reg):
//
// - The sign-in page at /interaction/{uid} is a plain form (no script), so a
//   browser fills it and an HTTP client posts it: field `login` (an account
//   id), optional `auth_age` (seconds: the authentication is reported that
//   long ago, i.e. a stale auth_time), optional `acr` and `amr` (comma list).
// - PUT /test/accounts/{id} with a JSON object of claims creates or replaces
//   an account (for example {"groups": ["cc-supervisors"]}). The claim
//   `tamper` (never released) makes the token endpoint hand back a broken ID
//   token for this account: "expired", "foreign-key" (same kid, another key),
//   "nonce", "audience", "issuer". The claim `groups_at_userinfo_only` keeps
//   the groups out of the ID token (userinfo has them). Everything else is
//   issued as a real provider issues it.
// - GET /test/health answers 200 once the provider is up.
//
// Test hooks exist because this provider only ever runs on loopback in tests.
import { createServer } from 'node:http';
import { renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    'issuer-file': { type: 'string' },
    port: { type: 'string', default: '0' },
  },
});

// Fixed accounts: one per callvault role, none, two roles, the wrong claim
// type, hostile values; and one per tampered ID token.
const accounts = new Map(Object.entries({
  'sam.sso': { name: 'Sam Supervisor', email: 'sam@example.test', groups: ['cc-supervisors', 'everyone'] },
  'alice.sso': { name: 'Alice Auditor', email: 'alice@example.test', groups: ['cc-auditors', 'everyone'] },
  'root.sso': { name: 'Root Admin', email: 'root@example.test', groups: ['cc-admins'] },
  'nobody.sso': { name: 'No Body', email: 'nobody@example.test', groups: ['everyone', 'cc-sales'] },
  'nogroups.sso': { name: 'No Groups', email: 'nogroups@example.test' },
  'both.sso': { name: 'Two Hats', email: 'both@example.test', groups: ['cc-supervisors', 'cc-admins'] },
  'string.sso': { name: 'String Groups', email: 'string@example.test', groups: 'cc-supervisors' },
  'hostile.sso': {
    name: '<script>alert(1)</script>\u0000\u202e',
    email: 'hostile@example.test',
    groups: ['x'.repeat(5000), '<img src=x onerror=alert(1)>', ...Array.from({ length: 2000 }, (_, i) => `g${i}`), 'cc-supervisors'],
  },
  'expired.sso': { name: 'Expired Token', groups: ['cc-supervisors'], tamper: 'expired' },
  'foreign.sso': { name: 'Foreign Key', groups: ['cc-supervisors'], tamper: 'foreign-key' },
  'nonce.sso': { name: 'Wrong Nonce', groups: ['cc-supervisors'], tamper: 'nonce' },
  'audience.sso': { name: 'Wrong Audience', groups: ['cc-supervisors'], tamper: 'audience' },
  'issuer.sso': { name: 'Wrong Issuer', groups: ['cc-supervisors'], tamper: 'issuer' },
  'userinfo.sso': { name: 'Groups At Userinfo', groups: ['cc-auditors'], groups_at_userinfo_only: true },
}));

const KID = 'callvault-test-signing-key';
async function rsaKey() {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  return { ...(await jose.exportJWK(privateKey)), kid: KID, alg: 'RS256', use: 'sig' };
}
const signingJwk = await rsaKey();
// Another key under the same kid: only a signature check tells them apart.
const foreignJwk = await rsaKey();

const server = createServer();
await new Promise((resolve) => { server.listen(Number(args.port), '127.0.0.1', resolve); });
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [],
  jwks: { keys: [signingJwk] },
  async findAccount(ctx, id) {
    const account = accounts.get(id);
    if (!account) return undefined;
    return {
      accountId: id,
      async claims(use) {
        const { tamper, groups_at_userinfo_only: userinfoOnly, ...claims } = account;
        // Like providers that keep groups out of the ID token.
        if (userinfoOnly && use === 'id_token') delete claims.groups;
        return { sub: id, preferred_username: id, ...claims };
      },
    };
  },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
  // Claims go into the ID token (as many enterprise providers configure
  // groups), not only to userinfo.
  conformIdTokenClaims: false,
  acrValues: ['urn:callvault:test:password', 'urn:callvault:test:mfa'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // First-party clients: no consent screen; the grant covers what was asked.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
    if (!grant) {
      grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
    }
    grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
    await grant.save();
    return grant;
  },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    IdToken: 600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  cookies: { keys: ['callvault-test-provider-cookie-key'] },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><title>Error</title><h1>${escapeHtml(out.error)}</h1><p>${escapeHtml(out.error_description ?? '')}</p>`;
  },
});
// Loopback http issuer: the provider sees the connection as it is.
provider.proxy = false;

// The token endpoint's answer, broken as the account asks (see the header).
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route !== 'token' || ctx.status !== 200 || typeof ctx.body?.id_token !== 'string') return;
  const claims = jose.decodeJwt(ctx.body.id_token);
  const tamper = accounts.get(claims.sub)?.tamper;
  if (!tamper) return;
  const now = Math.floor(Date.now() / 1000);
  let key = signingJwk;
  switch (tamper) {
    case 'expired': claims.iat = now - 7200; claims.exp = now - 3600; break;
    case 'foreign-key': key = foreignJwk; break;
    case 'nonce': claims.nonce = `not-${claims.nonce ?? ''}`; break;
    case 'audience': claims.aud = 'someone-else'; break;
    case 'issuer': claims.iss = 'http://127.0.0.1:1'; break;
    default: return;
  }
  ctx.body.id_token = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: KID })
    .sign(await jose.importJWK(key, 'RS256'));
});

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readBody(req, limit = 1 << 20) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction mismatch');
  if (req.method === 'GET' && !action) {
    const hint = details.params.login_hint ?? '';
    return send(res, 200, 'text/html; charset=utf-8', `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Test provider sign-in</title></head>
<body><h1>Test provider sign-in</h1>
<p>prompt: ${escapeHtml(details.prompt.name)} (${escapeHtml(details.prompt.reasons.join(', '))})</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>Account <input id="login" name="login" value="${escapeHtml(hint)}" autofocus></label>
<label>Authenticated seconds ago <input id="auth_age" name="auth_age" value="0"></label>
<button id="sign-in" type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort"><button id="cancel" type="submit">Cancel</button></form>
</body></html>`);
  }
  if (req.method === 'POST' && action === 'login') {
    const form = new URLSearchParams(await readBody(req));
    const accountId = form.get('login') ?? '';
    if (!accounts.has(accountId)) {
      return send(res, 200, 'text/html; charset=utf-8', `<!DOCTYPE html><p id="unknown">Unknown account ${escapeHtml(accountId)}</p>`);
    }
    const age = Math.max(0, Number.parseInt(form.get('auth_age') ?? '0', 10) || 0);
    const login = { accountId, ts: Math.floor(Date.now() / 1000) - age };
    if (form.get('acr')) login.acr = form.get('acr');
    if (form.get('amr')) login.amr = form.get('amr').split(',').filter(Boolean);
    return provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }
  return send(res, 405, 'text/plain', 'method not allowed');
}

async function testHook(req, res, path) {
  if (req.method === 'GET' && path === '/test/health') return send(res, 200, 'text/plain', 'ok');
  const m = path.match(/^\/test\/accounts\/([A-Za-z0-9._-]{1,100})$/);
  if (m && req.method === 'PUT') {
    const claims = JSON.parse(await readBody(req));
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
      return send(res, 400, 'text/plain', 'a JSON object of claims');
    }
    accounts.set(m[1], claims);
    return send(res, 204, 'text/plain', '');
  }
  return send(res, 404, 'text/plain', 'no such test hook');
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  try {
    const { pathname } = new URL(req.url, issuer);
    const im = pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?$/);
    if (im) return await interaction(req, res, im[1], im[2]);
    if (pathname.startsWith('/test/')) return await testHook(req, res, pathname);
    return callback(req, res);
  } catch (err) {
    if (!res.headersSent) send(res, 400, 'text/plain', `error: ${err.message}`);
    else res.end();
  }
});

const line = JSON.stringify({ issuer });
if (args['issuer-file']) {
  // Whole or not at all: scripts/test waits for the file to appear.
  writeFileSync(`${args['issuer-file']}.tmp`, `${line}\n`);
  renameSync(`${args['issuer-file']}.tmp`, args['issuer-file']);
}
process.stdout.write(`${line}\n`);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
