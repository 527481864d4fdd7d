'use strict';
// A parent or guardian acting for a child under 14 (issue 14 item 2; policy §IX; PIPL Art. 31),
// in a real browser. A vault of its own, texting codes to an SMS webhook sink: the guardian
// signs in with their own mobile (the one on the child's record), gets the code by SMS, and
// manages the child's consents, which the ledger records as `given_by = guardian`. The
// session reaches nothing else of the child's.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { SmtpSink } = require('../lib/smtp');
const { SmsSink } = require('../lib/sms');
const { Vault } = require('../lib/vault');
const { t } = require('../lib/i18n');
const B = require('../lib/browser');

const LANGS = ['zh-CN', 'en'];

let mail;
let sms;
let vault;
let browser;
let minor; // { account, subjectId, mobile, guardianMobile, birthDate, state }
const contexts = [];
const requested = [];

async function ctx(opts = {}) {
  const c = await B.newContext(browser, vault.base, opts);
  c.on('request', (r) => requested.push(r.url()));
  contexts.push(c);
  return c;
}

function withLog(fn) {
  return async (tc) => {
    try {
      await fn(tc);
    } catch (e) {
      e.message += `\n--- pivault serve log: last warnings and errors (${vault && vault.serveLog}) ---\n${vault ? vault.logProblems() : ''}`;
      throw e;
    }
  };
}

/** The guardian's sign-in from /signin: the link, their mobile, the texted code. */
async function guardianSignIn(page, who) {
  await page.goto('/signin');
  await Promise.all([page.waitForURL('**/signin/guardian'), page.locator('#guardian-link').click()]);
  await page.locator('#mobile').fill(who.guardianMobile);
  const since = Date.now();
  await Promise.all([page.waitForURL('**/signin/guardian'), page.locator('#guardian-send').click()]);
  await page.locator('#code').waitFor();
  const msg = await sms.waitForCode(`+86${who.guardianMobile}`, { since });
  await B.submitCode(page, msg.code);
  return msg;
}

describe('a guardian in Chromium', { timeout: 180_000 }, () => {
  before(async () => {
    mail = new SmtpSink();
    const smtpPort = await mail.start();
    sms = new SmsSink();
    const smsUrl = await sms.start();
    vault = new Vault({ smtpPort, smsUrl });
    await vault.start();
    browser = await B.launch();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (browser) await browser.close();
    if (vault) await vault.stop();
    if (sms) await sms.stop();
    if (mail) await mail.stop();
  });

  test('11a. a guardian signs in with the code texted to their own mobile and lands on the child\'s consents', withLog(async () => {
    minor = await vault.takeMinor();
    const c = await ctx();
    const page = await c.newPage();
    const msg = await guardianSignIn(page, minor);
    assert.equal(msg.to, `+86${minor.guardianMobile}`);
    assert.ok(!sms.messages.some((m) => m.to === `+86${minor.mobile}`), 'nothing was texted to the child');
    assert.equal(new URL(page.url()).pathname, '/me/consents', `the guardian lands on ${page.url()}`);
    assert.equal(await page.locator('h1').innerText(), t('consents.title', 'zh-CN'));
    assert.equal(await page.locator('#guardian-notice').innerText(), t('consents.guardian_intro', 'zh-CN'));
    // The navigation offers the consents only; other pages send the guardian back there.
    assert.equal(await page.locator('nav a[href="/me/access"]').count(), 0);
    assert.equal(await page.locator('nav a[href="/me"]').count(), 0);
    for (const path of ['/me', '/me/requests', '/me/access', '/me/recipients']) {
      await page.goto(path);
      assert.equal(new URL(page.url()).pathname, '/me/consents', `${path} ends at ${page.url()}`);
    }
    minor.state = await c.storageState();
  }));

  test('11b. the guardian grants marketing: the ledger says given by the guardian and the decision flips', withLog(async () => {
    const page = await (await ctx({ storageState: minor.state })).newPage();
    await page.goto('/me/consents');
    if (await page.locator('#withdraw-marketing').count()) {
      await Promise.all([page.waitForURL('**/me/consents?done=consent'), page.locator('#withdraw-marketing').click()]);
    }
    const before = await vault.marketingDecision(minor.subjectId);
    assert.equal(before.allowed, false, `marketing before the guardian's consent: ${JSON.stringify(before)}`);
    await Promise.all([page.waitForURL('**/me/consents?done=consent'), page.locator('#grant-marketing').click()]);
    assert.equal(await page.locator('main .notice[role="status"]').innerText(), t('consents.done', 'zh-CN'));
    assert.equal(await page.locator('#withdraw-marketing').count(), 1);
    const after = await vault.marketingDecision(minor.subjectId);
    assert.equal(after.allowed, true, `marketing after the guardian's consent: ${JSON.stringify(after)}`);
    const r = await vault.api('GET', `/v1/subjects/${minor.subjectId}/consents`, { role: 'app' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const text = JSON.stringify(r.body);
    assert.match(text, /"given_by":"guardian"/, `the ledger: ${text.slice(0, 600)}`);
  }));

  for (const lang of LANGS) {
    test(`11c. axe-core (WCAG 2.1 A/AA) and screenshots of the guardian's pages, ${lang}`, withLog(async () => {
      const violations = [];
      const pub = await (await ctx({ lang, axe: true })).newPage();
      const res = await pub.goto('/signin/guardian');
      assert.equal(res.status(), 200);
      assert.equal(await B.htmlLang(pub), lang);
      assert.equal(await pub.locator('h1').innerText(), t('signin.guardian.title', lang));
      assert.equal(await pub.locator('script').count(), 0);
      violations.push(...(await B.axeRun(pub, `guardian sign-in (${lang})`)));
      await B.shoot(pub, 'guardian-signin', lang);
      const me = await (await ctx({ lang, axe: true, storageState: minor.state })).newPage();
      await me.goto('/me/consents');
      if (await me.locator('#cookie-reject').count()) {
        await Promise.all([me.waitForURL((u) => u.pathname === '/me/consents'), me.locator('#cookie-reject').click()]);
      }
      assert.equal(await me.locator('#guardian-notice').innerText(), t('consents.guardian_intro', lang));
      violations.push(...(await B.axeRun(me, `guardian consents (${lang})`)));
      await B.shoot(me, 'guardian-consents', lang);
      B.assertAxeClean(violations);
    }));
  }

  test('11d. no mobile number in any URL the browser requested', () => {
    assert.ok(requested.length > 0);
    for (const u of requested) {
      const digits = decodeURIComponent(u).replace(/\D/g, '');
      for (const n of [minor.guardianMobile, minor.mobile]) {
        assert.ok(!digits.includes(n), `a mobile number in ${u}`);
      }
    }
  });
});
