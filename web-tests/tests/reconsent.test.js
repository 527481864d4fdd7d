'use strict';
// Re-consent after a material policy change (issue 14 item 4; policy §X; PIPL Art. 14 para. 2),
// in a real browser. A vault of its own (this file restarts `pivault serve`, so the privacy
// center tests of center.test.js never see the restart): people whose latest marketing event
// is a grant, allowed under the default policy; then `serve` again on the same database and
// master key with that policy published as version 2025-06-01, whose one material change
// touches `marketing`. Their consent no longer counts (`consent_outdated`), the vault mails each
// of them one policy-change notice, and /me/consents asks them to consent again.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { SmtpSink } = require('../lib/smtp');
const { Vault, writeMaterialChangePolicy, MATERIAL_CHANGE_VERSION: V } = require('../lib/vault');
const { t } = require('../lib/i18n');
const B = require('../lib/browser');

const LANGS = ['zh-CN', 'en'];
// The summary of crates/pivault-testkit's MATERIAL_CHANGE_SUMMARY.
const SUMMARY = 'Product promotion now also by SMS to the mobile number, and by partners on our behalf';

let sink;
let vault;
let browser;
let policyFile;
const people = {}; // p: re-consents in the flow test; q: left outdated for the axe tour
const contexts = [];

async function ctx(opts = {}) {
  const c = await B.newContext(browser, vault.base, opts);
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

/** The policy-change notices (subject names the version) the sink holds for `email`. */
function noticesTo(email) {
  const want = email.toLowerCase();
  return sink.messages.filter((m) => m.to.includes(want) && m.code === null && (m.subject || '').includes(V));
}

/** Waits up to `ms` for a policy-change notice to `email`; resolves to the notices seen. */
async function waitForNotice(email, ms = 20000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const n = noticesTo(email);
    if (n.length) return n;
    await new Promise((r) => setTimeout(r, 200));
  }
  const seen = sink.messages.map((m) => `${m.to.join(',')}: ${m.subject}`).slice(-10).join('; ');
  assert.fail(`no policy-change notice (version ${V}) to ${email} within ${ms} ms (last mails: ${seen || 'none'})`);
}

/** A signed-in storage state for `p`, made through the pages. */
async function signIn(p, lang = 'zh-CN') {
  const c = await ctx({ lang });
  const page = await c.newPage();
  await B.signIn(page, sink, p);
  const state = await c.storageState();
  await c.close();
  return state;
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('re-consent after a material policy change', { timeout: 240_000 }, () => {
  before(async () => {
    sink = new SmtpSink();
    const smtpPort = await sink.start();
    vault = new Vault({ smtpPort });
    await vault.start();
    policyFile = writeMaterialChangePolicy(path.join(vault.work, 'policy-2025-06-01'), SUMMARY);
    browser = await B.launch();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (browser) await browser.close();
    if (vault) await vault.stop();
    if (sink) await sink.stop();
  });

  test('R1. under the default policy: marketing allowed, /policy lists 2024-12-04 with its text', withLog(async () => {
    for (const name of ['p', 'q']) {
      const x = (people[name] = await vault.takePerson()); // takePerson: marketing allowed now
      const d = await vault.marketingDecision(x.subjectId);
      assert.equal(d.allowed, true, `${name}: marketing allowed under the default policy: ${JSON.stringify(d)}`);
    }
    const page = await (await ctx()).newPage();
    await page.goto('/policy');
    assert.equal(await page.locator('table#policy-history').count(), 1, 'table#policy-history');
    assert.equal(await page.locator('#version-2024-12-04').count(), 1, '#version-2024-12-04');
    assert.equal(await page.locator('#version-2023-06-01').count(), 1, '#version-2023-06-01');
    assert.equal(await page.locator(`#version-${V}`).count(), 0, `no #version-${V} yet`);
    assert.equal(await page.locator('details#policy-text').count(), 1, 'details#policy-text (2024-12-04 has its text on file)');
    assert.ok((await page.locator('details#policy-text .pre').textContent()).length > 1000, 'the full text is there');
    assert.equal(noticesTo(people.p.email).length, 0, 'no policy-change notice before the change');
  }));

  test('R2. serve restarted with version 2025-06-01: consent_outdated, one notice mail, re-consent on /me/consents', withLog(async () => {
    const { p } = people;
    const t0 = Date.now();
    await vault.restart({ policy: policyFile });
    const restartS = ((Date.now() - t0) / 1000).toFixed(1);
    const pol = await vault.api('GET', '/v1/policy', { role: 'app' });
    assert.equal(pol.body.version, V, `GET /v1/policy after the restart (${restartS} s): ${JSON.stringify(pol.body).slice(0, 200)}`);

    // The API: the earlier consent no longer counts; the explanation names the change.
    const d = await vault.marketingDecision(p.subjectId);
    assert.equal(d.allowed, false, `decision after the change: ${JSON.stringify(d)}`);
    assert.equal(d.reason, 'consent_outdated', JSON.stringify(d));
    const said = JSON.stringify(d);
    assert.ok(said.includes(V), `the decision names version ${V}: ${said}`);
    assert.ok(said.includes(SUMMARY), `the decision names the change's summary: ${said}`);

    // The notice, through the outbox to the SMTP sink.
    const [notice] = await waitForNotice(p.email);
    assert.ok(notice.text.includes(SUMMARY), `the notice names the change: ${notice.text.slice(0, 600)}`);
    assert.ok(notice.text.includes(V), 'the notice names the version');
    assert.match(notice.text, /PIPL Art\. 14/, 'the notice cites PIPL Art. 14');

    // The pages: sign in, the notice on /me leads to /me/consents.
    p.state = await signIn(p);
    const page = await (await ctx({ storageState: p.state })).newPage();
    await page.goto('/me');
    const meNotice = page.locator('#reconsent-notice');
    assert.equal(await meNotice.count(), 1, '#reconsent-notice on /me');
    assert.equal(await meNotice.innerText(), t('me.reconsent', 'zh-CN'));
    await Promise.all([page.waitForURL((u) => u.pathname === '/me/consents'), meNotice.locator('a[href="/me/consents"]').click()]);
    assert.equal(await page.locator('#reconsent-notice').innerText(), t('consents.reconsent_notice', 'zh-CN'));
    const row = page.locator('#consent-marketing');
    assert.match(await row.locator('.state').innerText(), new RegExp('^' + escapeRe(t('consents.outdated', 'zh-CN'))));
    const changed = await page.locator('#changed-marketing').innerText();
    assert.ok(changed.includes(V) && changed.includes(SUMMARY), `#changed-marketing names the version and summary: ${changed}`);
    assert.equal(await page.locator('#withdraw-marketing').count(), 0, 'no withdraw button for a consent that no longer counts');
    const again = page.locator('#reconsent-marketing');
    assert.equal(await again.innerText(), t('consents.reconsent', 'zh-CN'));
    // Only marketing changed: no other purpose is marked.
    assert.deepEqual(await page.locator('[id^="changed-"]').evaluateAll((es) => es.map((e) => e.id)), ['changed-marketing']);

    await Promise.all([page.waitForURL('**/me/consents?done=consent'), again.click()]);
    assert.equal(await page.locator('main .notice[role="status"]').innerText(), t('consents.done', 'zh-CN'));
    assert.equal(await page.locator('#withdraw-marketing').count(), 1, '#withdraw-marketing after consenting again');
    assert.equal(await page.locator('#reconsent-marketing').count(), 0, 'no #reconsent-marketing any more');
    assert.equal(await page.locator('#changed-marketing').count(), 0, 'no #changed-marketing any more');
    assert.equal(await page.locator('#reconsent-notice').count(), 0, 'no #reconsent-notice on /me/consents any more');
    const state = await row.locator('.state').innerText();
    assert.match(state, new RegExp('^' + escapeRe(t('consents.granted', 'zh-CN'))));
    assert.ok(state.includes(V), `the fresh consent is given under ${V}: ${state}`);
    const after = await vault.marketingDecision(p.subjectId);
    assert.equal(after.allowed, true, `decision after consenting again: ${JSON.stringify(after)}`);
    await page.goto('/me');
    assert.equal(await page.locator('#reconsent-notice').count(), 0, 'no #reconsent-notice on /me any more');

    // Exactly one notice for the person; nobody got two.
    assert.equal(noticesTo(p.email).length, 1, 'exactly one policy-change notice to the person');
    const perAddress = new Map();
    for (const m of sink.messages.filter((x) => x.code === null && (x.subject || '').includes(V))) {
      for (const a of m.to) perAddress.set(a, (perAddress.get(a) || 0) + 1);
    }
    const twice = [...perAddress].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], `addresses with more than one notice (of ${perAddress.size} notified)`);
    console.log(`# policy-change notices mailed to ${perAddress.size} address(es); serve restarted in ${restartS} s`);
  }));

  test('R2b. serve restarted again on the same policy: no second notice, the fresh consent still counts', withLog(async () => {
    const { p, q } = people;
    await waitForNotice(q.email); // the other affected person's notice is out before the count
    const before = sink.messages.length;
    await vault.restart();
    await new Promise((r) => setTimeout(r, 3000)); // time for the outbox workers to send anything due
    const fresh = sink.messages.slice(before).filter((m) => (m.subject || '').includes(V));
    assert.deepEqual(fresh.map((m) => `${m.to.join(',')}: ${m.subject}`), [], 'no policy-change notice after opening again');
    assert.equal(noticesTo(p.email).length, 1);
    assert.equal((await vault.marketingDecision(p.subjectId)).allowed, true, 'the consent given under 2025-06-01 counts');
    assert.equal((await vault.marketingDecision(q.subjectId)).reason, 'consent_outdated', 'q has not consented again');
  }));

  test('R3. /policy lists version 2025-06-01 with its change marked material', withLog(async () => {
    for (const lang of LANGS) {
      const page = await (await ctx({ lang })).newPage();
      await page.goto('/policy');
      const row = page.locator(`table#policy-history #version-${V}`);
      assert.equal(await row.count(), 1, `${lang}: #version-${V} in table#policy-history`);
      const text = await row.innerText();
      assert.ok(text.includes(SUMMARY), `${lang}: the row names the change: ${text}`);
      assert.ok(text.includes(t('policy.material', lang)), `${lang}: the change is marked material: ${text}`);
      assert.ok(text.includes(t('policy.no_text', lang)), `${lang}: the fixture version has no text on file: ${text}`);
      assert.equal(await page.locator('#version-2024-12-04').count(), 1, `${lang}: earlier versions stay listed`);
      assert.ok(!(await page.locator('#version-2024-12-04').innerText()).includes(t('policy.no_text', lang)), `${lang}: 2024-12-04 has its text`);
      assert.match(await page.locator('main').innerText(), new RegExp(escapeRe(`${t('policy.version', lang)} ${V}`)), `${lang}: the version in force`);
      // The current version's text is not on file, so there is no full text to show.
      assert.equal(await page.locator('details#policy-text').count(), 0, `${lang}: no details#policy-text for a version without text`);
    }
  }));

  for (const lang of LANGS) {
    test(`R4. axe-core (WCAG 2.1 A/AA) and screenshots: re-consent notice and /policy, ${lang}`, withLog(async () => {
      const { q } = people;
      q.state = q.state || (await signIn(q, lang));
      const violations = [];
      const page = await (await ctx({ lang, axe: true, storageState: q.state })).newPage();
      const visit = async (url, name, { shot = false, title } = {}) => {
        const res = url ? await page.goto(url) : null;
        if (res) assert.equal(res.status(), 200, `${url}: status`);
        assert.equal(await B.htmlLang(page), lang, `${name}: <html lang>`);
        assert.equal(await page.locator('script').count(), 0, `${name}: no script on the page`);
        if (title) assert.equal(await page.locator('h1').first().innerText(), t(title, lang), `${name}: heading`);
        violations.push(...(await B.axeRun(page, `${name} (${lang})`)));
        if (shot) await B.shoot(page, name, lang);
      };
      await page.goto('/me');
      if (await page.locator('#cookie-banner').count()) {
        await visit(null, 'me-reconsent-banner');
        await Promise.all([page.waitForURL((u) => u.pathname === '/me'), page.locator('#cookie-reject').click()]);
      }
      await visit('/me', 'me-reconsent', { title: 'me.title' });
      assert.equal(await page.locator('#reconsent-notice').innerText(), t('me.reconsent', lang));
      await visit('/me/consents', 'reconsent', { shot: true, title: 'consents.title' });
      assert.equal(await page.locator('#reconsent-notice').innerText(), t('consents.reconsent_notice', lang));
      assert.match(await page.locator('#consent-marketing .state').innerText(), new RegExp('^' + escapeRe(t('consents.outdated', lang))));
      assert.equal(await page.locator('#reconsent-marketing').innerText(), t('consents.reconsent', lang));
      await visit('/policy', 'policy-reconsent', { title: null });
      assert.equal(await page.locator(`#version-${V}`).count(), 1);
      B.assertAxeClean(violations);
    }));
  }
});
