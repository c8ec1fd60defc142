// The dashboard and the portal in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser is downloaded). Run by scripts/ui/e2e-browser.sh, which starts
// the server and passes: BASE_PORT, OPERATOR_EMAIL, PASSWORD, SHOTS (screenshot directory).
//
// The flow: log in as the operator, create a tenant, add a channel and set its credentials,
// see it ready, issue and revoke a key, add a webhook endpoint, send a test event and replay
// its delivery, invite a user, log out; the invited user sets a password on
// {slug}.localhost and sees only their tenant; a form posted without the CSRF token is refused.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import assert from 'node:assert/strict';

const port = process.env.BASE_PORT;
const email = process.env.OPERATOR_EMAIL;
const password = process.env.PASSWORD;
const shots = process.env.SHOTS;
mkdirSync(shots, { recursive: true });
const admin = `http://localhost:${port}`;
const slug = `acme${Date.now() % 100000}`;
const portal = `http://${slug}.localhost:${port}`;

// A webhook receiver that answers 200.
let received = 0;
const receiver = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => { received += 1; res.writeHead(200); res.end('ok'); });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;

const profile = mkdtempSync(join(tmpdir(), 'moltbot-e2e-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1280, height: 800 },
});
const page = context.pages()[0] ?? (await context.newPage());
page.on('dialog', (d) => d.accept()); // the data-confirm prompts
const errors = [];
page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`) });
const step = (name) => console.log(`· ${name}`);

try {
  step('the root sends a browser to the login page');
  await page.goto(`${admin}/`);
  assert.match(page.url(), /\/login\?next=\/admin$/);
  await shot('login');

  step('the operator logs in');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${admin}/admin/tenants`);
  const cookies = await context.cookies(admin);
  const session = cookies.find((c) => c.name === 'msk_session');
  assert.ok(session && session.httpOnly && session.secure && session.sameSite === 'Lax', JSON.stringify(session));

  step('creates a tenant');
  await page.getByLabel('Name', { exact: true }).fill('Acme <b>Corp</b>');
  await page.getByLabel(/^Slug/).fill(slug);
  await page.getByLabel('Plan', { exact: true }).selectOption('pro');
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await page.getByText('shown only this once').waitFor();
  assert.match(await page.locator('#secret-value').inputValue(), /^msk_live_/);
  await page.getByRole('link', { name: 'Open the tenant →' }).click();
  await page.getByRole('heading', { name: /Acme <b>Corp<\/b>/ }).waitFor();

  step('adds a channel and sets its credentials');
  await page.getByLabel('Add a channel').selectOption('telegram');
  await page.getByRole('button', { name: 'Add channel' }).click();
  const row = page.locator('tr[data-channel="telegram"]');
  await row.getByText('awaiting credentials').waitFor();
  await row.getByText('Set credentials').click();
  await row.getByLabel('botToken').fill('123456:AAe2e-secret_token');
  await row.getByRole('button', { name: 'Save credentials' }).click();
  await page.locator('tr[data-channel="telegram"]').getByText('ready', { exact: true }).waitFor();
  assert.ok(!(await page.content()).includes('AAe2e-secret_token'), 'the credential is never shown');
  await shot('tenant');

  step('issues and revokes a key');
  await page.getByRole('link', { name: 'API keys' }).click();
  await page.getByLabel('Name').fill('deploy');
  await page.getByRole('button', { name: 'Issue key' }).click();
  await page.getByText('shown only this once').waitFor();
  await shot('key-issued');
  await page.getByRole('link', { name: 'Back to the keys' }).click();
  const keyRow = page.locator('tr', { hasText: 'deploy' });
  await keyRow.getByRole('button', { name: 'Revoke' }).click();
  await page.getByText('The API key was revoked.').waitFor();
  await page.locator('tr', { hasText: 'deploy' }).getByText('revoked').waitFor();
  await shot('keys');

  step('adds a webhook endpoint, sends a test event and replays its delivery');
  await page.getByRole('link', { name: 'Webhooks' }).click();
  await page.getByLabel('URL').fill(hookUrl);
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  await page.getByText('shown only this once').waitFor();
  await page.getByRole('link', { name: 'Open the endpoint' }).click();
  await page.getByRole('button', { name: 'Send a test event' }).click();
  await page.getByText('A test event was queued').waitFor();
  const succeeded = page.locator('tbody .badge', { hasText: 'succeeded' });
  for (let i = 0; i < 40; i += 1) {
    if (await succeeded.count()) break;
    await page.waitForTimeout(250);
    await page.reload();
  }
  await succeeded.first().waitFor();
  await shot('webhook');
  await page.locator('tbody tr a').first().click();
  await page.getByRole('heading', { name: 'Attempts' }).waitFor();
  await page.getByRole('button', { name: 'Replay' }).click();
  await page.getByText('The delivery was queued again.').waitFor();
  for (let i = 0; i < 40 && received < 2; i += 1) await page.waitForTimeout(250);
  assert.ok(received >= 2, `the replay reached the receiver (${received} requests)`);
  await page.reload();
  await shot('delivery');

  step('invites a user');
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByLabel('Email').fill('ana@acme.test');
  await page.getByLabel('Role').selectOption('admin');
  await page.getByRole('button', { name: 'Invite user' }).click();
  const invite = await page.locator('#secret-value').inputValue();
  assert.ok(invite.length > 20);

  step('a form without the CSRF token is refused');
  const forged = await context.request.post(`${admin}/admin/tenants`, {
    form: { name: 'Forged' }, maxRedirects: 0,
  });
  assert.equal(forged.status(), 403);
  await page.goto(`${admin}/admin/tenants?q=Forged`);
  await page.getByText('No tenant matches').waitFor();

  step('the gateways: add one (its token shown once), open its config page');
  await page.getByRole('link', { name: 'Gateways', exact: true }).click();
  await page.getByRole('heading', { name: 'Gateways' }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('pool-1');
  await page.getByLabel(/^Capacity/).fill('10');
  await page.getByRole('button', { name: 'Add gateway' }).click();
  await page.getByText('shown only this once').waitFor();
  assert.match(await page.locator('#secret-value').inputValue(), /^msgw_/);
  await page.getByRole('link', { name: 'Open the gateway →' }).click();
  await page.getByRole('heading', { name: 'Gateway pool-1' }).waitFor();
  await shot('gateway-detail');
  await page.goto(`${admin}/admin/gateways`);
  await shot('gateways');
  await page.getByRole('link', { name: 'default', exact: true }).click();
  await page.getByRole('link', { name: 'Its config document →' }).click();
  await page.getByText('renders a config the gateway accepts').waitFor();
  assert.ok(!(await page.content()).includes('AAe2e-secret_token'), 'the preview is redacted');
  await shot('gateway');

  step('the tenants list, then log out');
  await page.goto(`${admin}/admin/tenants`);
  await shot('tenants');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByText('You are logged out.').waitFor();
  await page.goto(`${admin}/admin/tenants`);
  assert.match(page.url(), /\/login/);

  step(`the invited user sets a password on ${slug}.localhost`);
  await page.goto(`${portal}/invite?token=${encodeURIComponent(invite)}`);
  await page.getByLabel(/New password/).fill('a long enough password');
  await page.getByRole('button', { name: /Set password/ }).click();
  await page.waitForURL(`${portal}/portal`);
  await page.locator('tr[data-channel="telegram"]').getByText('ready', { exact: true }).waitFor();
  await shot('portal');
  const html = await page.content();
  assert.ok(!html.includes('/admin/'), 'no admin links in the portal');
  // An admin may manage channels but not keys or users (owner only).
  assert.equal(await page.getByRole('link', { name: 'API keys' }).count(), 1, 'admins read keys');
  await page.getByRole('link', { name: 'Users' }).click();
  assert.equal(await page.getByRole('button', { name: 'Invite user' }).count(), 0);
  assert.deepEqual(errors, [], 'no console errors (CSP violations would show here)');
  // The admin is not served on a tenant's host; unknown tenants are not found.
  const adminThere = await page.goto(`${portal}/admin/tenants`);
  assert.equal(adminThere.status(), 404);
  const nobody = await page.goto(`http://nobody-here.localhost:${port}/login`);
  assert.equal(nobody.status(), 404);
  await page.goto(`${portal}/portal`);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByText('You are logged out.').waitFor();
  await page.goto(`${portal}/portal`);
  assert.match(page.url(), /\/login/);

  console.log('browser end-to-end: all steps passed');
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e);
  process.exitCode = 1;
} finally {
  await context.close();
  receiver.close();
  rmSync(profile, { recursive: true, force: true });
}
