'use strict';
// A tiny SMS webhook sink for the tests: `pivault serve --sms-webhook-url` POSTs
// {"to": "+86…", "text": "…"} here; every message is kept in memory.

const http = require('node:http');

class SmsSink {
  constructor() {
    this.messages = []; // { to, text, at }
  }

  /** Listens on a free loopback port; resolves to the webhook URL. */
  async start() {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        try {
          const m = JSON.parse(body);
          this.messages.push({ to: String(m.to), text: String(m.text), at: Date.now() });
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        } catch {
          res.writeHead(400).end();
        }
      });
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${this.server.address().port}/sms`;
  }

  /**
   * The first message to `to` (E.164) received at or after `since` carrying a 6-digit code;
   * waits up to `timeout` ms. Resolves to { to, text, code }.
   */
  async waitForCode(to, { since = 0, timeout = 15000 } = {}) {
    const end = Date.now() + timeout;
    for (;;) {
      const m = this.messages.find((x) => x.to === to && x.at >= since && /\b\d{6}\b/.test(x.text));
      if (m) return { ...m, code: /(?:code is |验证码：)(\d{6})/.exec(m.text)?.[1] || /\b(\d{6})\b/.exec(m.text)[1] };
      if (Date.now() > end) {
        throw new Error(`no SMS with a code to ${to} within ${timeout} ms (${this.messages.length} received)`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop() {
    if (this.server) await new Promise((resolve) => this.server.close(resolve));
  }
}

module.exports = { SmsSink };
