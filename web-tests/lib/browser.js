'use strict';
// Chromium (Debian's /usr/bin/chromium) through playwright-core, and the steps the tests share:
// contexts per language, sign-in with the mailed code, axe-core runs, screenshots.

const fs = require('node:fs');
const path = require('node:path');
const assert = require('node:assert/strict');
const { chromium } = require('playwright-core');
const { REPO } = require('./vault');

const CHROMIUM = process.env.PIVAULT_WEB_CHROMIUM || '/usr/bin/chromium';
const AXE = require.resolve('axe-core/axe.min.js');
const SHOTS = path.join(REPO, 'docs', 'screenshots');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const ACCEPT = { 'zh-CN': 'zh-CN,zh;q=0.9', en: 'en-US,en;q=0.9' };

async function launch() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A fresh browser context for `lang` ('zh-CN' or 'en'), with the vault's base URL. `gpc` adds
 * `Sec-GPC: 1` to every request; `axe` turns the pages' CSP off so axe-core can be injected;
 * `storageState` reuses a signed-in session.
 */
async function newContext(browser, base, { lang = 'zh-CN', gpc = false, axe = false, storageState, acceptDownloads = false } = {}) {
  const headers = { 'Accept-Language': ACCEPT[lang] };
  if (gpc) headers['Sec-GPC'] = '1';
  return browser.newContext({
    baseURL: base,
    locale: lang === 'en' ? 'en-US' : 'zh-CN',
    extraHTTPHeaders: headers,
    bypassCSP: axe,
    storageState,
    acceptDownloads,
    viewport: { width: 1280, height: 800 },
  });
}

/** Submits the sign-in form for `email` (the page must be on /signin); resolves to the page. */
async function requestCode(page, email) {
  await page.locator('#email').fill(email);
  await Promise.all([
    page.waitForURL('**/signin'),
    page.locator('form[action="/signin"] button[type="submit"]').click(),
  ]);
  await page.locator('#code').waitFor();
}

/**
 * Signs `person` in through the pages: /signin, their email, the code from the SMTP sink,
 * /signin/verify → /me. Resolves to the mail that carried the code.
 */
async function signIn(page, sink, person) {
  await page.goto('/signin');
  const since = Date.now();
  await requestCode(page, person.email);
  const mail = await sink.waitForCode(person.email, { since });
  await submitCode(page, mail.code);
  const url = new URL(page.url());
  if (url.pathname !== '/me') {
    const pending = (await page.context().cookies()).find((k) => k.name === 'pv_signin');
    const err = new Error(
      `sign-in of ${person.email}: the code step ended at ${url.pathname} (status ${page.lastVerifyStatus}), not /me` +
        (pending ? `; the sign-in request ${pending.value.split('.')[0]} is still pending` : ''),
    );
    err.signinRequest = pending ? pending.value.split('.')[0] : null;
    throw err;
  }
  return mail;
}

/** Enters `code` in the code step and submits it; resolves once the answer has loaded. */
async function submitCode(page, code) {
  await page.locator('#code').fill(code);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/signin/verify'),
    page.waitForEvent('framenavigated', (f) => f === page.mainFrame()),
    page.locator('form[action="/signin/verify"] button[type="submit"]').click(),
  ]);
  await page.waitForLoadState('load');
  page.lastVerifyStatus = res.status();
  return res;
}

/**
 * Runs axe-core (WCAG 2.0/2.1 A and AA) on the page, which must come from a context made with
 * `axe: true`. Resolves to every violation, each {id, impact, help, targets, page}.
 */
async function axeRun(page, label) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }),
    AXE_TAGS,
  );
  // A run that checked nothing would pass silently: axe must have applied some rules.
  assert.ok(result.passes.length + result.incomplete.length + result.violations.length > 0, `axe-core ran no rule on ${label}`);
  if (result.incomplete.length && process.env.PIVAULT_WEB_AXE_REVIEW) {
    console.log(`# axe needs review on ${label}: ${result.incomplete.map((r) => `${r.id}(${r.nodes.length})`).join(', ')}`);
  }
  return result.violations.map((v) => ({
    page: label,
    id: v.id,
    impact: v.impact,
    help: v.help,
    targets: v.nodes.map((n) => `${n.target.join(' ')} ${n.html.replace(/\s+/g, ' ').slice(0, 120)}`),
    summary: v.nodes[0] && v.nodes[0].failureSummary,
  }));
}

/** Fails on serious or critical violations, printing every violation found. */
function assertAxeClean(violations) {
  for (const v of violations) {
    console.log(`# axe ${v.impact} ${v.id} on ${v.page}: ${v.help} — ${v.targets.join(' | ')}`);
  }
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.equal(
    bad.length,
    0,
    `axe-core: ${bad.length} serious/critical violation(s):\n` +
      bad.map((v) => `  ${v.impact} ${v.id} on ${v.page} (${v.help}): ${v.targets.join(' | ')}\n    ${(v.summary || '').replace(/\n/g, '\n    ')}`).join('\n'),
  );
}

/** A full-page screenshot at docs/screenshots/<name>.<lang>.png. */
async function shoot(page, name, lang) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.${lang}.png`);
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
  return file;
}

/** `<html lang>` of the page. */
function htmlLang(page) {
  return page.locator('html').getAttribute('lang');
}

module.exports = { launch, newContext, requestCode, submitCode, signIn, axeRun, assertAxeClean, shoot, htmlLang, SHOTS };
