// A real OpenID Connect provider on loopback for the browser sign-in test (tests/browser/test_login.py),
// built on the `oidc-provider` package. Its development login form accepts any login and password:
// the login typed becomes the user, and the claims come from the users given below.
//
//   node tests/node/oidc_server.mjs '<json config>'
//
// config: {"port": 0, "client_id": "...", "client_secret": "...", "redirect_uri": "http://.../oauth2callback",
//          "users": {"ana@example.com": {"name": "Ana Lopez", "groups": ["market-de"]}}}
// Prints one line `ready <issuer>` on stdout once it listens (port 0: a free port is chosen).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2] ?? '{}');
for (const key of ['client_id', 'client_secret', 'redirect_uri', 'users']) {
  if (!config[key]) {
    console.error(`oidc_server: missing "${key}" in the JSON config (see the header of this file)`);
    process.exit(2);
  }
}

const server = createServer();
await new Promise((resolve) => server.listen(config.port ?? 0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: [config.redirect_uri],
    post_logout_redirect_uris: [config.redirect_uri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  async findAccount(ctx, sub) {
    const user = config.users[sub] ?? {};
    return {
      accountId: sub,
      async claims() {
        return { sub, email: sub, email_verified: true, name: user.name ?? sub, groups: user.groups ?? [] };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
  conformIdTokenClaims: false, // the ID token carries the claims (Streamlit reads st.user from it)
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: { devInteractions: { enabled: true } },
});
provider.on('server_error', (ctx, error) => console.error('oidc_server error:', error));

server.on('request', provider.callback());
console.log(`ready ${issuer}`);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
