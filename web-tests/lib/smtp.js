'use strict';
// A tiny SMTP sink for the tests: accepts every message on 127.0.0.1 and keeps it in memory,
// decoded (MIME multipart, quoted-printable, base64, RFC 2047 subjects).

const net = require('node:net');

/** Decodes one quoted-printable body into a Buffer. */
function decodeQuotedPrintable(text) {
  const soft = text.replace(/=\r?\n/g, '');
  const bytes = [];
  for (let i = 0; i < soft.length; i++) {
    const c = soft[i];
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes);
}

/** Splits a MIME entity into its headers (lower-case names, unfolded) and its body. */
function splitEntity(raw) {
  const m = /\r?\n\r?\n/.exec(raw);
  const head = m ? raw.slice(0, m.index) : raw;
  const body = m ? raw.slice(m.index + m[0].length) : '';
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { headers, body };
}

/** Decodes RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`). */
function decodeWords(value) {
  return (value || '').replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=\s*/g, (_, _cs, enc, data) =>
    enc.toLowerCase() === 'b'
      ? Buffer.from(data, 'base64').toString('utf8')
      : decodeQuotedPrintable(data.replace(/_/g, ' ')).toString('utf8'),
  );
}

/** The decoded text of every text part of a MIME entity, joined by newlines. */
function decodeText(raw) {
  const { headers, body } = splitEntity(raw);
  const type = headers['content-type'] || 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type);
  if (/^multipart\//i.test(type) && boundary) {
    const parts = body.split('--' + boundary[1]).slice(1);
    return parts
      .filter((p) => !p.startsWith('--'))
      .map((p) => decodeText(p.replace(/^\r?\n/, '')))
      .join('\n');
  }
  if (!/^text\//i.test(type)) return '';
  const cte = (headers['content-transfer-encoding'] || '7bit').toLowerCase();
  if (cte === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (cte === 'quoted-printable') return decodeQuotedPrintable(body).toString('utf8');
  return Buffer.from(body, 'latin1').toString('utf8');
}

/** The one-time code in a decoded mail text (en `code is NNNNNN`, zh-CN `验证码：NNNNNN`). */
function findCode(text) {
  for (const marker of [/code is\D{0,20}?(\d{6})(?!\d)/i, /验证码[：:]?\D{0,20}?(\d{6})(?!\d)/]) {
    const m = marker.exec(text);
    if (m) return m[1];
  }
  return null;
}

class SmtpSink {
  constructor() {
    this.messages = [];
    this.waiters = [];
    this.server = net.createServer((socket) => this.session(socket));
    this.sockets = new Set();
  }

  /** Listens on a free loopback port; resolves to the port. */
  async start() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    return this.port;
  }

  async stop() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  session(socket) {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let inData = false;
    let env = { from: null, to: [] };
    const reply = (line) => socket.write(line + '\r\n');
    reply('220 pivault-web-tests ESMTP sink');
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (inData) {
          const s = buf.toString('latin1');
          const end = s.startsWith('.\r\n') ? 0 : s.indexOf('\r\n.\r\n');
          if (end < 0) return;
          const data = end === 0 ? '' : s.slice(0, end + 2);
          buf = buf.subarray(Buffer.byteLength(s.slice(0, end === 0 ? 3 : end + 5), 'latin1'));
          inData = false;
          // Dot-unstuffing, then UTF-8 (8BITMIME bodies) as bytes → latin1 string → decoded.
          const raw = data.replace(/^\.\./gm, '.');
          this.deliver(env, raw);
          env = { from: null, to: [] };
          reply('250 OK: queued');
          continue;
        }
        const i = buf.indexOf('\r\n');
        if (i < 0) return;
        const line = buf.subarray(0, i).toString('utf8');
        buf = buf.subarray(i + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') {
          socket.write('250-pivault-web-tests\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 OK\r\n');
        } else if (verb === 'HELO') reply('250 pivault-web-tests');
        else if (verb === 'MAIL') {
          env.from = (/<([^>]*)>/.exec(line) || [])[1] || null;
          reply('250 OK');
        } else if (verb === 'RCPT') {
          env.to.push(((/<([^>]*)>/.exec(line) || [])[1] || '').toLowerCase());
          reply('250 OK');
        } else if (verb === 'DATA') {
          inData = true;
          reply('354 End data with <CR><LF>.<CR><LF>');
        } else if (verb === 'RSET') {
          env = { from: null, to: [] };
          reply('250 OK');
        } else if (verb === 'NOOP') reply('250 OK');
        else if (verb === 'QUIT') {
          reply('221 Bye');
          socket.end();
          return;
        } else reply('502 Command not implemented');
      }
    });
  }

  deliver(env, raw) {
    const { headers } = splitEntity(raw);
    const msg = {
      from: env.from,
      to: env.to,
      subject: decodeWords(headers.subject),
      headers,
      raw,
      text: decodeText(raw),
      at: Date.now(),
    };
    msg.code = findCode(msg.text);
    this.messages.push(msg);
    for (const w of this.waiters.slice()) {
      if (w.match(msg)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(msg);
      }
    }
  }

  /**
   * The first message to `address` received after `since` (ms since the epoch) that holds a
   * code; waits up to `timeoutMs` for it.
   */
  waitForCode(address, { since = 0, timeoutMs = 20000 } = {}) {
    const want = address.toLowerCase();
    const match = (m) => m.at >= since && m.to.includes(want) && m.code !== null;
    const found = this.messages.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { match, resolve };
      this.waiters.push(w);
      setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) {
          this.waiters.splice(i, 1);
          const seen = this.messages.map((m) => `${m.to.join(',')}: ${m.subject}`).join('; ');
          reject(new Error(`no code mail to ${address} within ${timeoutMs} ms (mails seen: ${seen || 'none'})`));
        }
      }, timeoutMs);
    });
  }
}

module.exports = { SmtpSink, decodeText, decodeQuotedPrintable, findCode };
