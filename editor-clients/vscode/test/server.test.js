'use strict';
/**
 * The extension's protocol conversation with the real `$FIMLS --stdio` and its model,
 * played through vscode-languageserver-protocol as vscode-languageclient plays it: the same
 * client capabilities (computed by vscode-languageclient itself), the settings of the
 * README's block mapped by the extension's settings module, inline items routed through the
 * extension's acceptance tracker, and the rewrite request built by its rewrite module.
 * The tests run in order on one server.
 */

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { pathToFileURL } = require('url');

const { Session, fimlsCommand, CancellationTokenSource, withTimeout, READY_MS, ANSWER_MS, ACTION_MS, SOURCE } = require('./helpers/session');
const { languageClientCapabilities } = require('./helpers/capabilities');
const { PACKAGE, readmeSettingsFor, effectiveFlat, home } = require('./helpers/config');
const { serverSettings, nest, launchSettings } = require('../out/settings');
const { AcceptanceTracker } = require('../out/acceptance');
const { describeStatus } = require('../out/status');
const { findRewriteData, redirectRewrite, rewriteActionsParams, rewriteRequest, cleanInstruction } = require('../out/rewrite');
const { ACCEPTED_COMMAND, REWRITE_COMMAND } = require('../out/protocol');


describe('fimls --stdio as the VS Code extension drives it', () => {
  let session;
  let tmp;
  let uri;
  let settings; // what the extension sends: initializationOptions and workspace/configuration
  const tracker = new AcceptanceTracker();
  let firstItem;
  let firstPosition;
  let textBeforeAccept;

  /** A test that appends the server's stderr to its failure. */
  const step = (name, fn) =>
    test(name, async (t) => {
      try {
        await fn(t);
      } catch (error) {
        if (session && error instanceof Error) {
          const tail = `\n--- fimls stderr (last lines) ---\n${session.stderr.split('\n').slice(-25).join('\n')}`;
          error.message += tail;
          if (error.stack) error.stack += tail;
        }
        throw error;
      }
    });

  /** Run a server command as the extension does (workspace/executeCommand). */
  const execute = (command, args, token) => session.request('workspace/executeCommand', { command, arguments: args }, token);

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fimls-vscode-'));
    fs.writeFileSync(path.join(tmp, 'geometry.py'), SOURCE);
    uri = pathToFileURL(path.join(tmp, 'geometry.py')).href;
    // VS Code's view of the `fimls` section: declared defaults plus the README's lines.
    const section = nest(effectiveFlat(readmeSettingsFor(fimlsCommand())));
    const { launch, problems } = launchSettings(section, home);
    assert.deepEqual(problems, []);
    settings = serverSettings(section);
    session = new Session({
      command: launch.command,
      args: launch.args,
      env: launch.env,
      capabilities: languageClientCapabilities(PACKAGE.engines.vscode.replace(/^\^/, '')),
      initializationOptions: settings,
      configuration: settings,
      rootUri: pathToFileURL(tmp).href,
    });
  });

  after(async () => {
    if (session) {
      try {
        await session.stop();
      } catch {
        session.kill();
      }
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  step('initialize: inline completion, code actions with resolve, and the fimls commands', async () => {
    const result = await withTimeout(session.start(), 30000, 'initialize');
    const caps = result.capabilities;
    assert.ok(caps.inlineCompletionProvider, 'inlineCompletionProvider');
    assert.equal(caps.codeActionProvider.resolveProvider, true);
    for (const kind of ['quickfix', 'refactor.rewrite', 'source']) assert.ok(caps.codeActionProvider.codeActionKinds.includes(kind), kind);
    for (const c of [ACCEPTED_COMMAND, REWRITE_COMMAND, 'fimls.applyAction']) {
      assert.ok(caps.executeCommandProvider.commands.includes(c), c);
    }
    assert.equal(caps.positionEncoding ?? 'utf-16', 'utf-16', "VS Code's position encoding");
    assert.equal(caps.completionProvider, undefined, 'no completion fallback for a client with inline completion');
  });

  step('the model gets ready: fimls/status "ready" (shown as $(sparkle) fimls)', async () => {
    const ready = await session.waitForStatus((s) => s.state === 'ready', READY_MS);
    assert.equal(describeStatus(ready).text, '$(sparkle) fimls');
    assert.ok(ready.model && ready.model.name, 'the status names the model');
  });

  step('the settings from the README are accepted, pulled and pushed', async () => {
    assert.ok(session.serverRequests.includes('workspace/configuration'), 'the server pulled the fimls section');
    // A change as the extension pushes it (workspace/didChangeConfiguration).
    await session.conn.sendNotification('workspace/didChangeConfiguration', { settings: { fimls: settings } });
    await session.stats(); // handled in order: the notification was processed
    const refused = session.messages.filter((m) => /invalid settings/.test(m.message));
    assert.deepEqual(refused, [], 'no "fimls: invalid settings ignored" message');
    // The same check catches a bad value.
    const bad = structuredClone(settings);
    bad.completion.maxLines = 'eight';
    await session.conn.sendNotification('workspace/didChangeConfiguration', { settings: { fimls: bad } });
    await session.stats();
    const after = session.messages.filter((m) => /invalid settings/.test(m.message));
    assert.equal(after.length, 1, 'a bad value is reported');
    assert.match(after[0].message, /completion\.maxLines/);
    session.messages.length = 0;
    await session.conn.sendNotification('workspace/didChangeConfiguration', { settings: { fimls: settings } });
    await session.stats();
    assert.deepEqual(session.messages.filter((m) => /invalid settings/.test(m.message)), []);
  });

  step("inline completion at the end of a function's first body line, busy then ready", async () => {
    await session.open(uri, 'python', SOURCE);
    firstPosition = session.positionAfter(uri, '    return ');
    const from = session.statuses.length;
    const result = await withTimeout(session.inlineCompletion(uri, firstPosition), ANSWER_MS, 'inlineCompletion');
    assert.ok(Array.isArray(result.items) && result.items.length === 1, `one item: ${JSON.stringify(result)}`);
    const item = result.items[0];
    assert.equal(typeof item.insertText, 'string');
    assert.ok(item.insertText.trim().length > 0, `a non-empty suggestion: ${JSON.stringify(item.insertText)}`);
    assert.deepEqual(item.range, { start: firstPosition, end: firstPosition });
    assert.equal(item.command.command, ACCEPTED_COMMAND);
    assert.deepEqual(item.command.arguments, [{ uri, chars: [...item.insertText].length }]);
    firstItem = item;
    // fimls/status: busy while the model worked, ready again afterwards.
    const busy = await session.waitForStatus((s) => s.state === 'busy', 5000, from);
    assert.equal(describeStatus(busy).text, '$(sync~spin) fimls');
    const busyAt = session.statuses.indexOf(busy);
    await session.waitForStatus((s) => s.state === 'ready', 30000, busyAt + 1);
  });

  step('accepting it (Tab): the document gains exactly the suggestion; fimls.accepted counts a whole accept', async () => {
    const item = firstItem;
    assert.ok(item, 'the previous test got an item');
    // What the extension's middleware does with an item shown in the editor.
    const receipt = item.command.arguments[0];
    const { key, reports } = tracker.shown(uri, item.range.start, item.insertText, receipt);
    assert.deepEqual(reports, []);
    // VS Code inserts the text at the item's range, then runs the item's command.
    textBeforeAccept = session.docs[uri].text;
    const change = { range: item.range, text: item.insertText };
    await session.edit(uri, change.range, change.text);
    assert.deepEqual(tracker.changed(uri, [change]), []);
    const lines = textBeforeAccept.split('\n');
    lines[firstPosition.line] = lines[firstPosition.line].slice(0, firstPosition.character) + item.insertText + lines[firstPosition.line].slice(firstPosition.character);
    assert.equal(session.docs[uri].text, lines.join('\n'), 'the text before plus the suggestion at the cursor');
    const sent = tracker.accepted(receipt, key);
    assert.equal(sent.length, 1);
    assert.deepEqual(sent[0], receipt, 'the item\'s command arguments, unchanged');
    for (const r of sent) assert.equal(await execute(ACCEPTED_COMMAND, [r]), null);
    const stats = await session.stats();
    assert.deepEqual(stats.acceptances, { total: 1, full: 1, partial: 0, chars: receipt.chars });
  });

  step('accepting the next word only: counted as a partial accept', async () => {
    // A new function; its body's first line asks for a longer suggestion.
    const end = session.end(uri);
    await session.edit(uri, { start: end, end }, '\n\ndef mean(values):\n    return ');
    const position = session.positionAfter(uri, 'def mean(values):\n    return ');
    const result = await withTimeout(session.inlineCompletion(uri, position), ANSWER_MS, 'inlineCompletion');
    const item = result.items[0];
    assert.ok(item && item.insertText.trim(), `a suggestion: ${JSON.stringify(result)}`);
    const receipt = item.command.arguments[0];
    const word = /^\s*[\w$]+|^\s*[^\w\s]+/.exec(item.insertText)[0];
    assert.ok(word.length >= 2 && word.length < item.insertText.length, `a first word to take from ${JSON.stringify(item.insertText)}`);
    tracker.shown(uri, item.range.start, item.insertText, receipt);
    // VS Code's "accept next word" inserts the word; no command runs.
    const change = { range: { start: position, end: position }, text: word };
    await session.edit(uri, change.range, change.text);
    assert.deepEqual(tracker.changed(uri, [change]), []);
    // The suggestion ends when VS Code shows the next one (here: the user moves on).
    const reports = tracker.closed(uri);
    assert.deepEqual(reports, [{ ...receipt, accepted: [...word].length }]);
    for (const r of reports) assert.equal(await execute(ACCEPTED_COMMAND, [r]), null);
    const stats = await session.stats();
    assert.equal(stats.acceptances.total, 2);
    assert.equal(stats.acceptances.full, 1);
    assert.equal(stats.acceptances.partial, 1);
    assert.equal(stats.acceptances.chars, firstItem.command.arguments[0].chars + [...word].length);
  });

  step('a request superseded by a newer one for the same document is answered RequestCancelled (-32800)', async () => {
    const end = session.end(uri);
    await session.edit(uri, { start: end, end }, '\n\n\ndef norm(x, y):\n    squared = ');
    const position = session.positionAfter(uri, '    squared = ');
    // VS Code asks again as the user types; the older request is superseded.
    const older = session.inlineCompletion(uri, position);
    const newer = session.inlineCompletion(uri, position);
    await assert.rejects(withTimeout(older, ANSWER_MS, 'older request'), (e) => e.code === -32800);
    const answer = await withTimeout(newer, ANSWER_MS, 'newer request');
    assert.ok(Array.isArray(answer.items), 'the newer request is answered');
  });

  step('$/cancelRequest: a cancelled request is answered RequestCancelled, the server carries on', async () => {
    const end = session.end(uri);
    await session.edit(uri, { start: end, end }, '\n\n\ndef clamp(value, low, high):\n    if value < low:\n        ');
    const position = session.positionAfter(uri, 'if value < low:\n        ');
    const source = new CancellationTokenSource();
    const pending = session.inlineCompletion(uri, position, source.token);
    source.cancel(); // vscode-jsonrpc sends $/cancelRequest for it
    await assert.rejects(withTimeout(pending, ANSWER_MS, 'cancelled request'), (e) => e.code === -32800);
    const answer = await withTimeout(session.inlineCompletion(uri, position), ANSWER_MS, 'next request');
    assert.ok(Array.isArray(answer.items));
  });

  step('positions are UTF-16 columns, as VS Code counts them, around non-ASCII text', async () => {
    const other = pathToFileURL(path.join(tmp, 'labels.py')).href;
    await session.open(other, 'python', 'def label(tail):\n    text = "naïve ☕ café 😀" + tail\n    return text\n');
    const position = session.positionAfter(other, '😀"');
    assert.equal(position.character, 28, 'the emoji is two UTF-16 units');
    const prompt = await session.request('fimls/prompt', { textDocument: { uri: other }, position });
    const segments = prompt.segments;
    const i = segments.findIndex((s) => !s.special && s.text.endsWith('text = "naïve ☕ café 😀"'));
    assert.ok(i >= 0, `the prompt's text before the cursor ends at the cursor: ${JSON.stringify(segments)}`);
    assert.ok(segments[i + 1].special, 'a FIM token follows the cursor');
    assert.ok(segments.slice(i + 1).some((s) => !s.special && s.text.startsWith(' + tail\n')), 'the text after the cursor');
    await session.conn.sendNotification('textDocument/didClose', { textDocument: { uri: other } });
  });

  step('code action: "Add docstring" resolves to an edit that puts a docstring right after the def', async () => {
    const before = session.docs[uri].text;
    const defLine = before.split('\n').indexOf('def scale(values, factor):');
    const range = { start: { line: defLine, character: 4 }, end: { line: defLine, character: 4 } };
    const actions = await session.request('textDocument/codeAction', {
      textDocument: { uri },
      range,
      context: { diagnostics: [], triggerKind: 1 },
    });
    const docstring = actions.find((a) => /docstring/i.test(a.title) && /scale/.test(a.title));
    assert.ok(docstring, `a docstring action: ${JSON.stringify(actions.map((a) => a.title))}`);
    assert.ok(docstring.data && !docstring.edit && !docstring.command, 'resolved lazily (data, no edit yet)');
    const resolved = await withTimeout(session.request('codeAction/resolve', docstring), ACTION_MS, 'codeAction/resolve');
    assert.ok(resolved.edit && resolved.edit.documentChanges, `an edit with documentChanges: ${JSON.stringify(resolved)}`);
    const edits = resolved.edit.documentChanges;
    assert.ok(edits.every((e) => e.textDocument.uri === uri && e.textDocument.version === session.docs[uri].version), 'versioned edits of this document');
    // VS Code applies it; here the test's apply function does, then sends didChange.
    assert.deepEqual(session.applyEdit(resolved.edit), { applied: true });
    const oldLines = before.split('\n');
    const newLines = session.docs[uri].text.split('\n');
    assert.deepEqual(newLines.slice(0, defLine + 1), oldLines.slice(0, defLine + 1), 'unchanged up to the def');
    const first = newLines[defLine + 1];
    assert.match(first, /^ {4}("""|''')/, `a docstring line right after the def: ${JSON.stringify(first)}`);
    const quote = first.trim().slice(0, 3);
    const oneLine = first.trim().length >= 6 && first.trim().endsWith(quote);
    const last = oneLine ? defLine + 1 : newLines.findIndex((l, j) => j > defLine + 1 && l.includes(quote));
    assert.ok(last > defLine, 'the docstring closes');
    assert.deepEqual(newLines.slice(last + 1), oldLines.slice(defLine + 1), 'the rest is unchanged');
  });

  step('Rewrite selection…: redirected to fimls.rewriteSelection, run as fimls.rewrite [data, instruction] with workspace/applyEdit', async () => {
    const before = session.docs[uri].text;
    const lines = before.split('\n');
    const start = lines.indexOf('def add(a, b):');
    const range = { start: { line: start, character: 0 }, end: { line: start + 2, character: 0 } };
    const actions = await session.request('textDocument/codeAction', rewriteActionsParams(uri, range));
    const listed = actions.find((a) => a.command && a.command.command === REWRITE_COMMAND);
    assert.ok(listed, `a rewrite action: ${JSON.stringify(actions)}`);
    assert.equal(redirectRewrite(listed.command).command, 'fimls.rewriteSelection', 'the light bulb runs the extension\'s command');
    const data = findRewriteData(actions);
    assert.ok(data, 'its data');
    const instruction = cleanInstruction('  add type hints  ');
    const applied = session.applyEdits.length;
    const result = await withTimeout(execute(REWRITE_COMMAND, rewriteRequest(data, instruction).arguments), ACTION_MS, 'fimls.rewrite');
    assert.deepEqual(result, { applied: true });
    assert.equal(session.applyEdits.length, applied + 1, 'the server sent workspace/applyEdit, answered applied: true');
    const after = session.docs[uri].text.split('\n');
    assert.notEqual(session.docs[uri].text, before, 'the document changed');
    assert.deepEqual(after.slice(0, start), lines.slice(0, start), 'unchanged before the selection');
    const tail = lines.slice(start + 2);
    assert.deepEqual(after.slice(after.length - tail.length), tail, 'unchanged after the selection');
    assert.ok(after.some((l) => l.startsWith('def add(')), 'the function is still there');
  });

  step('shutdown and exit: the server process ends', async () => {
    await session.stop();
    assert.equal(session.exited, true);
    assert.equal(session.exitCode, 0);
    assert.throws(() => process.kill(session.proc.pid, 0), 'no process left');
  });
});
