'use strict';
// The pages' strings, read from the string table of crates/pivault-web/src/i18n.rs, so a test
// compares with what the server is meant to show in each language (not a copy that drifts).

const fs = require('node:fs');
const path = require('node:path');
const { REPO } = require('./vault');

const FILE = path.join(REPO, 'crates', 'pivault-web', 'src', 'i18n.rs');
const table = new Map();
// Rust string literals: no raw strings in the table; \" and \\ escapes and \n are decoded.
const lit = '"((?:[^"\\\\]|\\\\.)*)"';
const re = new RegExp(`\\(\\s*${lit}\\s*,\\s*${lit}\\s*,\\s*${lit}\\s*\\)`, 'g');
const unescape = (s) => s.replace(/\\(["\\n])/g, (_, c) => (c === 'n' ? '\n' : c));
for (const m of fs.readFileSync(FILE, 'utf8').matchAll(re)) {
  table.set(m[1], { en: unescape(m[2]), 'zh-CN': unescape(m[3]) });
}

/** The string of `key` in `lang` ('en' or 'zh-CN'); throws when the table has no such key. */
function t(key, lang) {
  const e = table.get(key);
  if (!e) throw new Error(`i18n.rs has no key ${key}`);
  return e[lang];
}

module.exports = { t, table };
