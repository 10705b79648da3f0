'use strict';
// Unit tests of the extension's plain modules (compiled to out/; none imports `vscode`).

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');

const out = (name) => require(path.join(__dirname, '..', 'out', name));
const { describeStatus, describeMissing, describeStopped, describeStarting, describeModel, isWorking } = out('status');
const { serverSettings, nest, launchSettings, expandHome, needsRestart, toJson } = out('settings');
const { AcceptanceTracker, advance, codePoints } = out('acceptance');
const { rewriteActionsParams, findRewriteData, cleanInstruction, rewriteRequest, redirectRewrite, rewriteFailure } =
  out('rewrite');
const { CrashPolicy } = out('crashes');
const { findExecutable } = out('executable');
const { formatStats } = out('stats');
const { documentSelector, LANGUAGES } = out('languages');

const MODEL = { name: 'Qwen2.5 Coder 0.5B Instruct AWQ', template: 'qwen2.5-coder', contextSize: 4096, threads: 2 };

describe('status bar', () => {
  test('ready: sparkle, the model in the tooltip, no error', () => {
    const v = describeStatus({ state: 'ready', message: 'ready: Qwen', model: MODEL });
    assert.equal(v.text, '$(sparkle) fimls');
    assert.match(v.tooltip, /ready \(Qwen2\.5 Coder 0\.5B Instruct AWQ, template qwen2\.5-coder, 4096 ctx, 2 threads\)/);
    assert.equal(v.error, false);
  });
  test('busy and loading spin', () => {
    assert.equal(describeStatus({ state: 'busy', message: 'generating', model: MODEL }).text, '$(sync~spin) fimls');
    assert.match(describeStatus({ state: 'busy', message: 'generating' }).tooltip, /fimls: generating/);
    const loading = describeStatus({ state: 'loading', message: 'loading qwen', model: null });
    assert.equal(loading.text, '$(sync~spin) fimls');
    assert.match(loading.tooltip, /loading the model: loading qwen/);
    assert.equal(loading.error, false);
  });
  test('error: error icon, the message as tooltip, error background', () => {
    const v = describeStatus({ state: 'error', message: 'model file missing: /x.gguf', model: null });
    assert.equal(v.text, '$(error) fimls');
    assert.match(v.tooltip, /^fimls: model file missing: \/x\.gguf/);
    assert.equal(v.error, true);
  });
  test('an inference server that does not answer', () => {
    const v = describeStatus({ state: 'unavailable', message: 'http://gpu:8080/v1/completions: connection refused; trying again in 2.0 s' });
    assert.equal(v.text, '$(debug-disconnect) fimls');
    assert.equal(v.error, true);
    assert.match(v.tooltip, /does not answer: http:\/\/gpu:8080.*connection refused/);
    assert.match(v.tooltip, /resume/);
  });

  test('unloaded, unknown states and missing fields', () => {
    assert.equal(describeStatus({ state: 'unloaded', message: '' }).text, '$(circle-outline) fimls');
    const unknown = describeStatus({ state: 'sleeping' });
    assert.equal(unknown.text, '$(question) fimls');
    assert.match(unknown.tooltip, /unknown state "sleeping"/);
    assert.equal(describeStatus({ state: 'error' }).tooltip.split('\n')[0], 'fimls: error');
  });
  test('client-side states: starting, stopped, server missing', () => {
    assert.equal(describeStarting('fimls').text, '$(sync~spin) fimls');
    const stopped = describeStopped('the language server keeps exiting');
    assert.equal(stopped.error, true);
    assert.match(stopped.tooltip, /keeps exiting/);
    const missing = describeMissing('/opt/nowhere/fimls');
    assert.equal(missing.text, '$(error) fimls');
    assert.equal(missing.error, true);
    assert.match(missing.tooltip, /"\/opt\/nowhere\/fimls" was not found/);
    assert.match(missing.tooltip, /fimls\.server\.command/);
  });
  test('describeModel and isWorking', () => {
    assert.equal(describeModel(null), '');
    assert.equal(describeModel({ name: 'M' }), 'M');
    assert.ok(isWorking('ready') && isWorking('busy'));
    assert.ok(!isWorking('error') && !isWorking('loading'));
  });
});

describe('settings', () => {
  const section = {
    server: { command: 'fimls', args: ['--stdio'], env: {} },
    trace: { server: 'off' },
    model: { path: null, contextSize: 4096 },
    completion: { maxLines: 4, multiline: 'never' },
    logLevel: 'info',
  };
  test('server settings: the section without server.* and trace.*', () => {
    assert.deepEqual(serverSettings(section), {
      model: { path: null, contextSize: 4096 },
      completion: { maxLines: 4, multiline: 'never' },
      logLevel: 'info',
    });
  });
  test('server settings are a plain JSON copy', () => {
    const withFunctions = { completion: { maxLines: 2, get: () => 1, nothing: undefined }, has: () => true };
    assert.deepEqual(serverSettings(withFunctions), { completion: { maxLines: 2 } });
    assert.deepEqual(serverSettings(null), {});
    assert.deepEqual(serverSettings(['x']), {});
    const copy = serverSettings(section);
    copy.completion.maxLines = 99;
    assert.equal(section.completion.maxLines, 4);
    assert.deepEqual(toJson([1, undefined, NaN]), [1, null, null]);
  });
  test('nest: dotted settings.json keys to the nested section', () => {
    assert.deepEqual(
      nest({ 'fimls.completion.maxLines': 4, 'fimls.logLevel': 'debug', 'editor.tabSize': 2, 'fimls.server.args': ['--stdio'] }),
      { completion: { maxLines: 4 }, logLevel: 'debug', server: { args: ['--stdio'] } },
    );
  });
  test('launch: defaults, ~ expansion, env', () => {
    assert.deepEqual(launchSettings({}, '/home/u'), {
      launch: { command: 'fimls', args: ['--stdio'], env: {} },
      problems: [],
    });
    const { launch, problems } = launchSettings(
      { server: { command: ' ~/fimls/.venv/bin/fimls ', args: ['--stdio', '--model', 'm.gguf'], env: { A: '1' } } },
      '/home/u/',
    );
    assert.deepEqual(launch, { command: '/home/u/fimls/.venv/bin/fimls', args: ['--stdio', '--model', 'm.gguf'], env: { A: '1' } });
    assert.deepEqual(problems, []);
  });
  test('launch: wrong types are reported and replaced by defaults', () => {
    const { launch, problems } = launchSettings({ server: { command: '', args: [1], env: { A: 2, B: 'b' } } }, '/h');
    assert.deepEqual(launch, { command: 'fimls', args: ['--stdio'], env: { B: 'b' } });
    assert.equal(problems.length, 3);
    assert.match(problems.join('\n'), /server\.command.*\n.*server\.args.*\n.*value of A/);
  });
  test('expandHome and needsRestart', () => {
    assert.equal(expandHome('~', '/h'), '/h');
    assert.equal(expandHome('~/x', '/h'), '/h/x');
    assert.equal(expandHome('/abs/~/x', '/h'), '/abs/~/x');
    assert.equal(expandHome('fimls', '/h'), 'fimls');
    assert.equal(needsRestart((k) => k === 'fimls.server'), true);
    assert.equal(needsRestart((k) => k === 'fimls.completion'), false);
  });
});

describe('acceptance tracking', () => {
  const uri = 'file:///w/a.py';
  const at = { line: 3, character: 11 };
  const insert = (pos, text) => [{ range: { start: pos, end: pos }, text }];
  const receipt = (text) => ({ uri, chars: codePoints(text) });

  test('Tab: the whole suggestion, then its command: the receipt unchanged', () => {
    const t = new AcceptanceTracker();
    const r = receipt('a + b');
    const { key, reports } = t.shown(uri, at, 'a + b', r);
    assert.deepEqual(reports, []);
    assert.deepEqual(t.changed(uri, insert(at, 'a + b')), []);
    const sent = t.accepted(r, key);
    assert.equal(sent.length, 1);
    assert.equal(sent[0], r, 'the item\'s own receipt object, unchanged');
    assert.deepEqual(t.closed(uri), []);
  });

  test('Tab, but the next suggestion arrives before the command: counted once', () => {
    const t = new AcceptanceTracker();
    const r = receipt('a + b');
    const { key } = t.shown(uri, at, 'a + b', r);
    t.changed(uri, insert(at, 'a + b'));
    const { reports } = t.shown(uri, { line: 3, character: 16 }, 'x', receipt('x'));
    assert.deepEqual(reports, [r]);
    assert.deepEqual(t.accepted(r, key), []);
  });

  test('next word: reported as partial when the suggestion ends, the rest if Tab follows', () => {
    const t = new AcceptanceTracker();
    const text = 'sum(values) / len(values)';
    const r = receipt(text);
    const { key } = t.shown(uri, at, text, r);
    assert.deepEqual(t.changed(uri, insert(at, 'sum(')), []);
    assert.deepEqual(t.changed(uri, insert({ line: 3, character: 15 }, 'values)')), []);
    const { reports } = t.shown(uri, { line: 3, character: 22 }, ' / len(values)', receipt(' / len(values)'));
    assert.deepEqual(reports, [{ uri, chars: 25, accepted: 11 }]);
    // VS Code may still run the first item's command for the rest: only the rest is added.
    assert.deepEqual(t.accepted(r, key), [{ uri, chars: 25, accepted: 14 }]);
  });

  test('typing a character of the suggestion is not accepting it', () => {
    const t = new AcceptanceTracker();
    t.shown(uri, at, 'a + b', receipt('a + b'));
    assert.deepEqual(t.changed(uri, insert(at, 'a')), []);
    assert.deepEqual(t.changed(uri, insert({ line: 3, character: 12 }, ' ')), []);
    assert.deepEqual(t.shown(uri, { line: 3, character: 13 }, '+ b', receipt('+ b')).reports, []);
  });

  test('an edit elsewhere ends the suggestion; other documents do not', () => {
    const t = new AcceptanceTracker();
    t.shown(uri, at, 'foo(bar)', receipt('foo(bar)'));
    t.changed(uri, insert(at, 'foo('));
    assert.deepEqual(t.changed('file:///w/other.py', insert({ line: 0, character: 0 }, 'zz')), []);
    const ended = t.changed(uri, insert({ line: 0, character: 0 }, '#'));
    assert.deepEqual(ended, [{ uri, chars: 8, accepted: 4 }]);
    assert.deepEqual(t.closed(uri), []);
  });

  test('lines: "Accept Line" inserts a line and its break; positions move to the next line', () => {
    const t = new AcceptanceTracker();
    const text = 'x = 1\n    y = 2';
    t.shown(uri, at, text, receipt(text));
    t.changed(uri, insert(at, 'x = 1\n'));
    assert.deepEqual(t.changed(uri, insert({ line: 4, character: 0 }, '    y')), []);
    assert.deepEqual(t.closed(), [{ uri, chars: 15, accepted: 11 }]);
    assert.deepEqual(advance({ line: 2, character: 5 }, 'ab\r\ncd'), { line: 3, character: 2 });
    assert.deepEqual(advance({ line: 2, character: 5 }, 'ab'), { line: 2, character: 7 });
  });

  test('characters are counted in code points, as the server counts them', () => {
    const t = new AcceptanceTracker();
    const text = '"😀 ok"';
    const r = receipt(text);
    assert.equal(r.chars, 6);
    t.shown(uri, at, text, r);
    t.changed(uri, insert(at, '"😀')); // 3 UTF-16 units, 2 code points
    assert.deepEqual(t.closed(uri), [{ uri, chars: 6, accepted: 2 }]);
    assert.equal(codePoints('é😀'), 2);
  });

  test('a command with no known key is sent unchanged', () => {
    const t = new AcceptanceTracker();
    const r = receipt('abc');
    assert.deepEqual(t.accepted(r, undefined), [r]);
    assert.deepEqual(t.accepted(r, 's999'), [r]);
  });
});

describe('rewrite selection', () => {
  const data = { fimls: 1, kind: 'rewrite', uri: 'file:///w/a.py', version: 3, start: 0, end: 2 };
  const listed = [
    { title: 'Add docstring for `f`', kind: 'refactor.rewrite', data: { fimls: 1, kind: 'docstring' } },
    { title: 'Rewrite selection…', kind: 'refactor.rewrite', command: { title: 'Rewrite selection…', command: 'fimls.rewrite', arguments: [data] } },
  ];
  test('the code action request for a selection', () => {
    const range = { start: { line: 0, character: 0 }, end: { line: 2, character: 0 } };
    assert.deepEqual(rewriteActionsParams('file:///w/a.py', range), {
      textDocument: { uri: 'file:///w/a.py' },
      range,
      context: { diagnostics: [], only: ['refactor.rewrite'], triggerKind: 1 },
    });
  });
  test('finding the action\'s data (as listed, redirected, or as a bare command)', () => {
    assert.equal(findRewriteData(listed), data);
    const redirected = listed.map((a) => (a.command ? { ...a, command: redirectRewrite(a.command) } : a));
    assert.equal(findRewriteData(redirected), data);
    assert.equal(findRewriteData([listed[1].command]), data);
    assert.equal(findRewriteData([listed[0]]), undefined);
    assert.equal(findRewriteData(null), undefined);
  });
  test('instruction, request and redirect', () => {
    assert.equal(cleanInstruction('  add type hints \n'), 'add type hints');
    assert.equal(cleanInstruction('   '), undefined);
    assert.equal(cleanInstruction(undefined), undefined);
    assert.deepEqual(rewriteRequest(data, 'add type hints'), { command: 'fimls.rewrite', arguments: [data, 'add type hints'] });
    const cmd = { title: 'Rewrite selection…', command: 'fimls.rewrite', arguments: [data] };
    assert.deepEqual(redirectRewrite(cmd), { title: 'Rewrite selection…', command: 'fimls.rewriteSelection', arguments: [data] });
    const other = { title: 'x', command: 'fimls.applyAction', arguments: [] };
    assert.equal(redirectRewrite(other), other);
  });
  test('failure messages: none for a cancel', () => {
    assert.equal(rewriteFailure({ code: -32800, message: 'cancelled' }), undefined);
    assert.match(rewriteFailure({ code: -32801, message: 'x' }), /document changed/);
    const failed = Object.assign(new Error('the model wrote no code'), { code: -32803 });
    assert.equal(rewriteFailure(failed), 'fimls: rewrite failed: the model wrote no code');
  });
});

describe('server process', () => {
  test('crash policy: 3 restarts within 3 minutes, then stop; old crashes expire', () => {
    const p = new CrashPolicy(3, 180000);
    assert.deepEqual([0, 1000, 2000, 3000].map((t) => p.shouldRestart(t)), [true, true, true, false]);
    assert.equal(p.shouldRestart(400000), true);
    p.reset();
    assert.equal(p.shouldRestart(400001), true);
    assert.match(p.givingUpMessage(), /exited 4 times in 3 minutes/);
  });
  test('finding the executable: PATH lookup, paths, missing ones', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fimls-vscode-exe-'));
    try {
      const exe = path.join(dir, 'fimls');
      fs.writeFileSync(exe, '#!/bin/sh\n', { mode: 0o755 });
      const plain = path.join(dir, 'notes');
      fs.writeFileSync(plain, 'x', { mode: 0o644 });
      assert.equal(findExecutable('fimls', { PATH: `/nonexistent${path.delimiter}${dir}` }, 'linux'), exe);
      assert.equal(findExecutable(exe, { PATH: '' }, 'linux'), exe);
      assert.equal(findExecutable('notes', { PATH: dir }, 'linux'), undefined, 'not executable');
      assert.equal(findExecutable(dir, { PATH: '' }, 'linux'), undefined, 'a folder');
      assert.equal(findExecutable('fimls-definitely-missing', { PATH: dir }, 'linux'), undefined);
      assert.equal(findExecutable(path.join(dir, 'nope'), {}, 'linux'), undefined);
      assert.ok(findExecutable('node'), 'node is on PATH');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('statistics and languages', () => {
  test('stats summary', () => {
    const stats = {
      state: 'ready',
      message: 'ready: Qwen',
      model: MODEL,
      requests: { total: 5, suggestion: 3, empty: 1, cancelled: 1, error: 0, notReady: 0, skipped: 0 },
      latencyMs: { p50: 5, p95: 880.5, count: 4 },
      acceptances: { total: 2, full: 1, partial: 1, chars: 9 },
      cache: { memoryExact: 1, memoryTyped: 2, prefetched: 3, warmedUp: 1 },
      actions: { ok: 1, failed: 0, cancelled: 0, stale: 0 },
      index: { files: 3, definitions: 10, done: true },
    };
    const text = formatStats(stats, new Date(0));
    assert.match(text, /^fimls statistics \(1970-01-01T00:00:00\.000Z\)/);
    assert.match(text, /Requests: +5 \(suggestions 3, empty 1, cancelled 1/);
    assert.match(text, /Latency: +p50 5 ms, p95 880\.5 ms over 4 answers/);
    assert.match(text, /Accepted: +2 \(whole 1, partly 1\), 9 characters/);
    assert.match(text, /"acceptances": \{/);
    assert.match(formatStats({}), /Requests: +– /);
  });
  test('document selector: every language, files and untitled editors', () => {
    const selector = documentSelector();
    assert.equal(selector.length, LANGUAGES.length * 2);
    assert.deepEqual(selector.slice(0, 2), [
      { language: 'python', scheme: 'file' },
      { language: 'python', scheme: 'untitled' },
    ]);
  });
});
