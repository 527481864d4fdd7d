'use strict';
// A pivault for the browser tests: the binary (built with cargo unless PIVAULT_BIN names one),
// a fresh SQLite vault with a slice of ../shared/data/zh_CN-10k, API keys of the roles the
// tests act as, and `pivault serve` on a free loopback port, mailing codes to an SMTP sink (and
// texting them to an SMS webhook sink when given one).

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const DATA = process.env.PIVAULT_WEB_DATA || path.resolve(REPO, '..', 'shared', 'data', 'zh_CN-10k');
const USERS = Number(process.env.PIVAULT_WEB_USERS || 300);

/** Minimal RFC 4180 CSV parser: rows of fields (quotes, doubled quotes, CRLF). */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

function readCsv(file) {
  const [head, ...rows] = parseCsv(fs.readFileSync(file, 'utf8'));
  return { head, rows, objects: rows.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i]]))) };
}

/** Writes the first `n` accounts of the data set and everything of theirs to `out`. */
function writeSlice(out, n) {
  fs.mkdirSync(out, { recursive: true });
  const users = readCsv(path.join(DATA, 'users.csv'));
  const kept = users.rows.slice(0, n);
  const accounts = new Set(kept.map((r) => r[users.head.indexOf('account_id')]));
  const quote = (v) => (/[",\r\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v);
  const write = (name, head, rows) =>
    fs.writeFileSync(path.join(out, name), [head, ...rows].map((r) => r.map(quote).join(',')).join('\n') + '\n');
  write('users.csv', users.head, kept);
  for (const name of ['consent_events.csv', 'orders.csv', 'face_templates.csv', 'business_contacts.csv', 'icp_filings.csv']) {
    const f = path.join(DATA, name);
    if (!fs.existsSync(f)) continue;
    const t = readCsv(f);
    const c = t.head.indexOf('account_id');
    write(name, t.head, t.rows.filter((r) => r.length === t.head.length && accounts.has(r[c])));
  }
  const tickets = path.join(DATA, 'tickets.jsonl');
  if (fs.existsSync(tickets)) {
    const keep = fs
      .readFileSync(tickets, 'utf8')
      .split('\n')
      .filter((l) => l.trim() && accounts.has(JSON.parse(l).account_id));
    fs.writeFileSync(path.join(out, 'tickets.jsonl'), keep.map((l) => l + '\n').join(''));
  }
  return { accounts };
}

/**
 * Accounts of the slice fit for a sign-in by email: adults (18+), an email no other account of
 * the slice has, no guardian, and a `marketing` grant as their latest marketing event.
 */
function candidates(sliceDir) {
  const users = readCsv(path.join(sliceDir, 'users.csv')).objects;
  const events = readCsv(path.join(sliceDir, 'consent_events.csv')).objects;
  const emailCount = new Map();
  for (const u of users) {
    const e = (u.email || '').trim().toLowerCase();
    if (e) emailCount.set(e, (emailCount.get(e) || 0) + 1);
  }
  const lastMarketing = new Map();
  for (const ev of events) {
    if (ev.purpose !== 'marketing') continue;
    const prev = lastMarketing.get(ev.account_id);
    if (!prev || ev.at >= prev.at) lastMarketing.set(ev.account_id, ev);
  }
  const adultBefore = new Date();
  adultBefore.setUTCFullYear(adultBefore.getUTCFullYear() - 18);
  const cutoff = adultBefore.toISOString().slice(0, 10);
  return users.filter((u) => {
    const e = (u.email || '').trim().toLowerCase();
    const m = lastMarketing.get(u.account_id);
    return (
      e &&
      emailCount.get(e) === 1 &&
      /^\d{4}-\d{2}-\d{2}$/.test(u.birth_date || '') &&
      u.birth_date <= cutoff &&
      !(u.guardian_name || '').trim() &&
      m &&
      m.action === 'grant'
    );
  });
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The pivault binary: $PIVAULT_BIN, else `cargo build -p pivault` in the repository root. */
function binary(log) {
  if (process.env.PIVAULT_BIN) return path.resolve(process.env.PIVAULT_BIN);
  const t0 = Date.now();
  execFileSync('cargo', ['build', '-p', 'pivault'], { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] });
  log(`cargo build -p pivault: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(REPO, process.env.CARGO_TARGET_DIR) : path.join(REPO, 'target');
  return path.join(target, 'debug', 'pivault');
}

class Vault {
  constructor({ smtpPort, smsUrl, policy, log = (m) => console.log(`# ${m}`) }) {
    this.smtpPort = smtpPort;
    this.smsUrl = smsUrl;
    this.policy = policy || path.join(REPO, 'policies', 'default.toml');
    this.log = log;
    this.timings = {};
  }

  env() {
    return {
      ...process.env,
      PIVAULT_DATABASE_URL: `sqlite://${path.join(this.work, 'vault.db')}`,
      PIVAULT_MASTER_KEY_FILE: path.join(this.work, 'master.key'),
      PIVAULT_POLICY: this.policy,
      PIVAULT_STAFF_POLICY: path.join(REPO, 'policies', 'staff.cedar'),
      PIVAULT_LOG_LEVEL: process.env.PIVAULT_LOG_LEVEL || 'info,sqlx=warn',
      NO_COLOR: '1',
    };
  }

  run(args) {
    return execFileSync(this.bin, args, { cwd: this.work, env: this.env(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async start() {
    this.bin = binary(this.log);
    if (!fs.existsSync(this.bin)) throw new Error(`no pivault binary at ${this.bin}`);
    if (!fs.existsSync(path.join(DATA, 'users.csv'))) throw new Error(`the data set is missing: ${DATA}`);
    this.work = fs.mkdtempSync(path.join(os.tmpdir(), 'pivault-web-'));
    const slice = path.join(this.work, 'slice');
    let t0 = Date.now();
    writeSlice(slice, USERS);
    this.candidates = candidates(slice);
    this.users = readCsv(path.join(slice, 'users.csv')).objects;
    this.run(['migrate']);
    this.run(['import', slice, '--rejects', path.join(this.work, 'rejects')]);
    this.timings.import = (Date.now() - t0) / 1000;
    this.log(`slice of ${USERS} accounts written, migrated and imported in ${this.timings.import.toFixed(1)} s`);

    const purposes = [...fs.readFileSync(path.join(REPO, 'policies', 'default.toml'), 'utf8').matchAll(/^\[\[purpose\]\]\s*\nid\s*=\s*"([^"]+)"/gm)].map((m) => m[1]);
    if (!purposes.includes('marketing')) throw new Error('policies/default.toml: no marketing purpose found');
    this.keys = {};
    for (const role of ['app', 'admin', 'dpo']) {
      this.keys[role] = this.run(['keys', 'create', '--principal', `web-tests-${role}`, '--roles', role, '--purposes', purposes.join(',')]).trim();
    }

    this.port = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    this.serveLog = path.join(this.work, 'serve.log');
    await this.serve();
  }

  /** Starts `pivault serve` on this.port with this.policy; resolves once /readyz answers. */
  async serve() {
    const out = fs.openSync(this.serveLog, 'a');
    const t0 = Date.now();
    this.proc = spawn(this.bin, ['serve', '--bind', `127.0.0.1:${this.port}`], {
      cwd: this.work,
      env: {
        ...this.env(),
        PIVAULT_SMTP_URL: `smtp://127.0.0.1:${this.smtpPort}?from=privacy@example.com`,
        ...(this.smsUrl ? { PIVAULT_SMS_WEBHOOK_URL: this.smsUrl } : {}),
      },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, sig) => resolve({ code, sig })));
    for (let i = 0; ; i++) {
      try {
        const r = await fetch(`${this.base}/readyz`);
        if (r.ok) break;
      } catch {
        /* not yet */
      }
      if (this.proc.exitCode !== null || i > 300) {
        throw new Error(`pivault serve did not become ready:\n${fs.readFileSync(this.serveLog, 'utf8').slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    this.timings.serve = (Date.now() - t0) / 1000;
    this.log(`pivault serve ready at ${this.base} in ${this.timings.serve.toFixed(1)} s (policy ${this.policy}, work dir ${this.work})`);
  }

  /** Stops `pivault serve` (SIGTERM, then SIGKILL after 10 s); keeps the vault. */
  async halt() {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
      await this.exited;
      clearTimeout(t);
    }
  }

  /**
   * Restarts `pivault serve` on the same database, master key, keys and port, with `policy`
   * (a policy file's path) if given.
   */
  async restart({ policy } = {}) {
    await this.halt();
    if (policy) this.policy = policy;
    await this.serve();
  }

  async stop() {
    await this.halt();
    if (this.work && !process.env.PIVAULT_WEB_KEEP) fs.rmSync(this.work, { recursive: true, force: true });
  }

  /** The last warnings and errors of the server's log (for failures). */
  logProblems(n = 15) {
    const lines = this.logTail(1 << 20).split('\n').filter((l) => /\b(WARN|ERROR)\b/.test(l));
    return lines.length ? lines.slice(-n).join('\n') : '(no warnings or errors)';
  }

  /** The tail of the server's log (for failures). */
  logTail(n = 3000) {
    try {
      // eslint-disable-next-line no-control-regex
      return fs.readFileSync(this.serveLog, 'utf8').replace(/\x1b\[[0-9;]*m/g, '').slice(-n);
    } catch {
      return '';
    }
  }

  /** A JSON API call with a key of `role`; resolves to {status, body}. */
  async api(method, p, { role = 'admin', body } = {}) {
    const r = await fetch(this.base + p, {
      method,
      headers: {
        authorization: `Bearer ${this.keys[role]}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: r.status, body: json };
  }

  /** The subject id of an account (`POST /v1/lookup` by account id, purpose service). */
  async subjectOf(accountId) {
    const r = await this.api('POST', '/v1/lookup', { role: 'app', body: { by: 'account_id', value: accountId, purpose: 'service' } });
    if (r.status !== 200) throw new Error(`lookup ${accountId}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.subjects.length === 1 ? r.body.subjects[0] : null;
  }

  /** `POST /v1/decisions` (app key): use of user.name for marketing. */
  async marketingDecision(subjectId) {
    const r = await this.api('POST', '/v1/decisions', {
      role: 'app',
      body: { subject_id: subjectId, purpose: 'marketing', action: 'use', categories: ['user.name'] },
    });
    if (r.status !== 200) throw new Error(`decision: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /**
   * A minor of the slice (under 14 today) whose record gives a guardian's mobile:
   * {account, subjectId, mobile, guardianMobile, birthDate}.
   */
  async takeMinor() {
    this.used = this.used || new Set();
    const under14 = new Date();
    under14.setUTCFullYear(under14.getUTCFullYear() - 14);
    const cutoff = under14.toISOString().slice(0, 10);
    for (const u of this.users) {
      if (this.used.has(u.account_id) || !(u.guardian_mobile || '').trim() || !(u.birth_date > cutoff)) continue;
      this.used.add(u.account_id);
      const subjectId = await this.subjectOf(u.account_id);
      if (!subjectId) continue;
      return { account: u.account_id, subjectId, mobile: u.mobile.trim(), guardianMobile: u.guardian_mobile.trim(), birthDate: u.birth_date };
    }
    throw new Error('no minor with a guardian\'s mobile in the slice');
  }

  /**
   * The next unused candidate account whose subject exists and whose marketing use is allowed
   * now: {account, email, subjectId, name}.
   */
  async takePerson() {
    this.used = this.used || new Set();
    for (const u of this.candidates) {
      if (this.used.has(u.account_id)) continue;
      this.used.add(u.account_id);
      const subjectId = await this.subjectOf(u.account_id);
      if (!subjectId) continue;
      const d = await this.marketingDecision(subjectId);
      if (!d.allowed) continue;
      return { account: u.account_id, email: u.email.trim(), subjectId, name: u.name };
    }
    throw new Error('no further account of the slice fits (adult, unique email, marketing granted, imported)');
  }
}

/** The version of the policy written by writeMaterialChangePolicy. */
const MATERIAL_CHANGE_VERSION = '2025-06-01';

/**
 * Writes `dir/policy.toml`: policies/default.toml published as version 2025-06-01 with one
 * material change (`summary`) of the purpose `marketing`, and the policy's `text/` directory
 * beside it — what the Rust testkit's `write_material_change_policy` writes. Returns the path.
 */
function writeMaterialChangePolicy(dir, summary) {
  const root = path.join(REPO, 'policies');
  const src = fs.readFileSync(path.join(root, 'default.toml'), 'utf8');
  const header = '\nversion = "2024-12-04"';
  if (!src.includes(header)) throw new Error('policies/default.toml: its [policy] version moved');
  const out =
    src.replace(header, `\nversion = "${MATERIAL_CHANGE_VERSION}"`) +
    `\n[[policy_version]]\nversion = "${MATERIAL_CHANGE_VERSION}"\npublished = "${MATERIAL_CHANGE_VERSION}"\n\n` +
    `[[policy_version.change]]\nsummary = ${JSON.stringify(summary)}\nmaterial = true\npurposes = ["marketing"]\n`;
  fs.mkdirSync(path.join(dir, 'text'), { recursive: true });
  for (const f of fs.readdirSync(path.join(root, 'text'))) fs.copyFileSync(path.join(root, 'text', f), path.join(dir, 'text', f));
  const file = path.join(dir, 'policy.toml');
  fs.writeFileSync(file, out);
  return file;
}

module.exports = { Vault, REPO, parseCsv, writeMaterialChangePolicy, MATERIAL_CHANGE_VERSION };
