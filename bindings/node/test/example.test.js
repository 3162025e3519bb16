'use strict';
// The README's example (example.js) runs and prints what it should.

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');

test('example.js runs as the README shows it', () => {
  // Run it as a user would, requiring the package by name: a temporary node_modules links to it.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afc-example-'));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(path.join(__dirname, '..'), path.join(dir, 'node_modules', 'alphaforge-cache'), 'dir');
    fs.copyFileSync(path.join(__dirname, '..', 'example.js'), path.join(dir, 'example.js'));
    const out = execFileSync(process.execPath, [path.join(dir, 'example.js')], { encoding: 'utf8' });
    assert.equal(
      out,
      [
        '189.70,190.10,189.55,189.98',
        "[ '189.97/189.99', undefined ]",
        'bar:AAPL:1m:0930 left: removed',
        'AFC_INVALID_ARGUMENT',
        'quote:AAPL left: expired',
        '2 hits, 1 misses, ratio 0.6666666666666666 live false',
        '',
      ].join('\n')
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
