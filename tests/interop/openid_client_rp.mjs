// A relying party built on openid-client (OpenID Certified, by panva), driven
// by tests/interop/test_openid_client.py against a running auth web process.
//
// Protocol (one JSON object per line on stdout; one line on stdin):
//   -> {"step": "authorize", "url": "<authorization URL>"}
//   <- the callback URL the browser was sent to
//   -> {"step": "done", ...results}      or   {"step": "error", ...}
//
// Environment: ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_REDIRECT_URI.
import * as client from 'openid-client';
import { createInterface } from 'node:readline';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const say = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);

async function readLine() {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    lines.close();
    return line.trim();
  }
  throw new Error('stdin closed before the callback URL arrived');
}

async function errorOf(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    return { name: error.name, code: error.code ?? null, error: error.error ?? null, status: error.status ?? null };
  }
}

async function main() {
  const issuer = new URL(env('ISSUER'));
  const redirectUri = env('REDIRECT_URI');
  // Discovery; the test issuer is plain http on loopback, which openid-client refuses unless told.
  const config = await client.discovery(
    issuer,
    env('CLIENT_ID'),
    undefined,
    client.ClientSecretBasic(env('CLIENT_SECRET')),
    { execute: [client.allowInsecureRequests] },
  );
  const metadata = config.serverMetadata();

  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email offline_access',
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    nonce,
    state,
    max_age: '600',
  });
  say({ step: 'authorize', url: url.href });

  const callback = new URL(await readLine());
  // Checks state, exchanges the code with the PKCE verifier, validates the ID token
  // (signature against JWKS, iss, aud, exp, iat, nonce, auth_time for max_age).
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
    maxAge: 600,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const userinfoAfterRefresh = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  const introspection = await client.tokenIntrospection(config, refreshed.access_token);

  // Replaying the rotated-out refresh token must fail, and takes the family with it.
  const reuse = await errorOf(client.refreshTokenGrant(config, tokens.refresh_token));
  const introspectionAfterReuse = await client.tokenIntrospection(config, refreshed.access_token);
  const userinfoAfterReuse = await errorOf(client.fetchUserInfo(config, refreshed.access_token, claims.sub));

  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: env('POST_LOGOUT_REDIRECT_URI'),
    state: 'signed-out',
  });

  say({
    step: 'done',
    issuer: metadata.issuer,
    token_endpoint_auth_methods: metadata.token_endpoint_auth_methods_supported,
    id_token_claims: claims,
    token_type: tokens.token_type,
    expires_in: tokens.expiresIn(),
    scope: tokens.scope,
    userinfo,
    refresh: {
      rotated: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
      new_access_token: refreshed.access_token !== tokens.access_token,
      scope: refreshed.scope,
      userinfo: userinfoAfterRefresh,
      introspection,
    },
    reuse,
    introspection_after_reuse: introspectionAfterReuse,
    userinfo_after_reuse: userinfoAfterReuse,
    end_session_url: endSession.href,
  });
}

main().catch((error) => {
  say({ step: 'error', name: error.name, message: error.message, code: error.code ?? null, error: error.error ?? null });
  process.exitCode = 1;
});
