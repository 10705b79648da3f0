'use strict';
/**
 * The compiled extension (out/extension.js) activated in a stand-in VS Code
 * (helpers/fakevscode.js) with the real vscode-languageclient and the real
 * `$FIMLS --stdio`: what a user does in the editor, done through the API VS Code would
 * call (the registered providers, the commands), and checked where a user would see it
 * (the document's text, the status bar item, messages, the statistics document).
 * The tests run in order on one activation.
 */

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');

const { createHost } = require('./helpers/fakevscode');
const { effectiveFlat, readmeSettingsFor } = require('./helpers/config');
const { fimlsCommand, withTimeout, READY_MS, ACTION_MS, SOURCE } = require('./helpers/session');


/** Process ids of this process's children (the server), from /proc. */
function childPids() {
  const pids = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid && fields[0] !== 'Z') pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Poll `check` until it returns a truthy value. */
async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the extension in a stand-in VS Code', () => {
  let tmp;
  let host;
  let extension;
  let status; // the status bar item
  let doc;
  const token = () => new host.CancellationTokenSource().token;
  const inline = (document, position) =>
    host.providers.inline[0].provider.provideInlineCompletionItems(
      document,
      position,
      { triggerKind: host.vscode.InlineCompletionTriggerKind.Automatic, selectedCompletionInfo: undefined },
      token(),
    );
  const items = (result) => (Array.isArray(result) ? result : result?.items ?? []);
  /** "fimls: Show statistics", read from the document it opens. */
  const statistics = async () => {
    const shown = host.recorded.shownDocuments.length;
    await host.vscode.commands.executeCommand('fimls.showStats');
    assert.equal(host.recorded.shownDocuments.length, shown + 1, 'the statistics document opened');
    return host.recorded.shownDocuments[shown].getText();
  };
  const invalidSettingsMessages = () => host.recorded.messages.filter((m) => /invalid settings/.test(m.message));
  const log = () => host.channels.map((c) => c.lines.join('\n')).join('\n');

  const step = (name, fn) =>
    test(name, async () => {
      try {
        await fn();
      } catch (error) {
        if (host && error instanceof Error) {
          const tail = `\n--- the fimls output channel (last lines) ---\n${log().split('\n').slice(-25).join('\n')}`;
          error.message += tail;
          if (error.stack) error.stack += tail;
        }
        throw error;
      }
    });

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fimls-vscode-ext-'));
    // The user's settings from the README, but a server path that does not exist yet.
    const settings = effectiveFlat({
      ...readmeSettingsFor(fimlsCommand()),
      'fimls.server.command': path.join(tmp, 'missing', 'fimls'),
    });
    host = createHost({ settings, workspaceFolder: tmp });
    extension = host.load(path.join(__dirname, '..', 'out', 'extension.js'));
  });

  after(async () => {
    try {
      await extension?.deactivate();
    } finally {
      for (const pid of childPids()) process.kill(pid, 'SIGKILL');
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  step('a server that is not there: one error naming the setting, a red status item, no process', async () => {
    await extension.activate({ subscriptions: [] });
    status = host.statusItems[0];
    assert.ok(status && status.visible, 'a status bar item');
    assert.equal(status.text, '$(error) fimls');
    assert.match(status.tooltip, /was not found/);
    const errors = host.recorded.messages.filter((m) => m.kind === 'error');
    assert.equal(errors.length, 1, JSON.stringify(host.recorded.messages));
    assert.match(errors[0].message, /fimls\.server\.command/);
    assert.deepEqual(errors[0].items, ['Open Settings', 'Show Log']);
    for (const c of ['fimls.rewriteSelection', 'fimls.restart', 'fimls.showStats', 'fimls.showLog', 'fimls.inlineAccepted']) {
      assert.ok(host.commands.has(c), `${c} is registered`);
    }
    assert.deepEqual(childPids(), []);
    // Commands that need the server say it is not running (and do not throw).
    await host.vscode.commands.executeCommand('fimls.showStats');
    assert.match(host.recorded.messages.at(-1).message, /not running/);
  });

  step('setting fimls.server.command starts the server; the status item follows fimls/status to ready', async () => {
    host.configure({ 'fimls.server.command': fimlsCommand() });
    await until(() => status.text === '$(sparkle) fimls', READY_MS, 'the ready status');
    assert.ok(status.history.includes('$(sync~spin) fimls'), 'spinning while it started');
    assert.equal(status.command, 'fimls.showStats');
    assert.match(status.tooltip, /fimls: ready \(.+\)/);
    assert.equal(host.recorded.contexts['fimls.running'], true);
    assert.equal(childPids().length, 1, 'one server process');
    assert.deepEqual(invalidSettingsMessages(), [], 'the server took every setting');
  });

  step('ghost text: the registered provider answers; the item runs the extension\'s accept command; busy, then ready', async () => {
    doc = host.open(path.join(tmp, 'geometry.py'), 'python', SOURCE);
    const position = doc.positionAt(SOURCE.indexOf('    return ') + '    return '.length);
    const seen = status.history.length;
    const [item] = items(await inline(doc, position));
    assert.ok(item, 'an item');
    assert.equal(typeof item.insertText, 'string');
    assert.ok(item.insertText.trim(), 'a non-empty suggestion');
    assert.ok(item.range.start.isEqual(position) && item.range.isEmpty, 'at the cursor');
    assert.equal(item.command.command, 'fimls.inlineAccepted');
    const [receipt, key] = item.command.arguments;
    assert.deepEqual(receipt, { uri: doc.uri.toString(), chars: [...item.insertText].length });
    assert.equal(typeof key, 'string');
    await until(() => status.history.slice(seen).includes('$(sync~spin) fimls') && status.text === '$(sparkle) fimls', 10000, 'busy, then ready');

    // Tab: VS Code inserts the text (done here by the stand-in), then runs the item's command.
    host.applyEdits(doc, [new host.vscode.TextEdit(item.range, item.insertText)]);
    await host.vscode.commands.executeCommand(item.command.command, ...item.command.arguments);
    const stats = await statistics();
    assert.match(stats, new RegExp(`Accepted: +1 \\(whole 1, partly 0\\), ${receipt.chars} characters`));
  });

  step('the next word only: counted as a partial accept when the next suggestion comes', async () => {
    const end = doc.positionAt(doc.getText().length);
    host.applyEdits(doc, [new host.vscode.TextEdit(new host.Range(end, end), '\n\ndef mean(values):\n    return ')]);
    const position = doc.positionAt(doc.getText().length);
    const [item] = items(await inline(doc, position));
    assert.ok(item && item.insertText.trim(), 'a suggestion');
    const word = /^\s*[\w$]+|^\s*[^\w\s]+/.exec(item.insertText)[0];
    assert.ok(word.length >= 2 && word.length < item.insertText.length, `a first word of ${JSON.stringify(item.insertText)}`);
    // Ctrl+Right: VS Code inserts the word; no command runs. Then it asks again.
    host.applyEdits(doc, [new host.vscode.TextEdit(new host.Range(position, position), word)]);
    await inline(doc, doc.positionAt(doc.getText().length));
    const stats = await statistics();
    assert.match(stats, /Accepted: +2 \(whole 1, partly 1\)/);
  });

  step('an untitled editor (no file) gets suggestions too', async () => {
    const untitled = host.open('untitled:Untitled-1', 'python', 'def square(x):\n    return ');
    const [item] = items(await inline(untitled, new host.Position(1, 11)));
    assert.ok(item && item.insertText.trim(), 'a suggestion');
    assert.equal(item.command.arguments[0].uri, 'untitled:Untitled-1');
    host.close(untitled);
  });

  step('settings changes reach the server without the extension\'s own keys; a bad value is reported', async () => {
    host.configure({ 'fimls.completion.maxLines': 4, 'fimls.trace.server': 'messages' });
    await statistics(); // a round trip after the pushed change
    assert.deepEqual(invalidSettingsMessages(), []);
    host.configure({ 'fimls.completion.maxLines': 'eight' });
    await until(() => invalidSettingsMessages().length === 1, 10000, 'the server\'s warning');
    assert.equal(invalidSettingsMessages()[0].kind, 'warning');
    assert.match(invalidSettingsMessages()[0].message, /completion\.maxLines/);
    host.configure({ 'fimls.completion.maxLines': 8, 'fimls.trace.server': 'off' });
    await statistics();
    assert.equal(invalidSettingsMessages().length, 1, 'nothing more to report');
  });

  step('code actions: the docstring action resolves to an edit with a docstring right after the def', async () => {
    const lines = doc.getText().split('\n');
    const defLine = lines.indexOf('def scale(values, factor):');
    const provider = host.providers.codeActions[0].provider;
    const here = new host.Range(defLine, 4, defLine, 4);
    const actions = await provider.provideCodeActions(doc, here, { diagnostics: [], triggerKind: 1, only: undefined }, token());
    const docstring = actions.find((a) => /docstring/i.test(a.title));
    assert.ok(docstring, JSON.stringify(actions.map((a) => a.title)));
    const resolved = await withTimeout(provider.resolveCodeAction(docstring, token()), ACTION_MS, 'codeAction/resolve');
    assert.ok(resolved.edit, 'an edit');
    assert.equal(await host.vscode.workspace.applyEdit(resolved.edit), true);
    const after = doc.getText().split('\n');
    assert.deepEqual(after.slice(0, defLine + 1), lines.slice(0, defLine + 1));
    assert.match(after[defLine + 1], /^ {4}("""|''')/, 'a docstring line right after the def');
    assert.deepEqual(after.slice(after.length - (lines.length - defLine - 1)), lines.slice(defLine + 1), 'the body unchanged');
  });

  step('"Rewrite selection…" in the light bulb runs fimls.rewriteSelection', async () => {
    const lines = doc.getText().split('\n');
    const start = lines.indexOf('def add(a, b):');
    const selection = new host.Range(start, 0, start + 2, 0);
    const provider = host.providers.codeActions[0].provider;
    const actions = await provider.provideCodeActions(doc, selection, { diagnostics: [], triggerKind: 1, only: undefined }, token());
    const rewrite = actions.find((a) => a.title.startsWith('Rewrite selection'));
    assert.ok(rewrite, JSON.stringify(actions.map((a) => a.title)));
    assert.equal(rewrite.command.command, 'fimls.rewriteSelection');
    assert.equal(rewrite.command.arguments[0].kind, 'rewrite');
  });

  step('fimls: Rewrite selection… asks for the instruction; the server\'s edit lands in the selection', async () => {
    const run = () => host.vscode.commands.executeCommand('fimls.rewriteSelection');
    // No selection: a hint, nothing sent.
    host.setActiveEditor(doc, new host.Selection(0, 0, 0, 0));
    await run();
    assert.match(host.recorded.messages.at(-1).message, /select the code to rewrite/);
    assert.equal(host.recorded.inputBoxes.length, 0);
    // A selection, the input box dismissed: nothing happens.
    const lines = doc.getText().split('\n');
    const start = lines.indexOf('def add(a, b):');
    host.setActiveEditor(doc, new host.Selection(start, 0, start + 2, 0));
    const version = doc.version;
    host.answers.inputBox.push(undefined);
    await run();
    assert.equal(host.recorded.inputBoxes.length, 1);
    assert.equal(doc.version, version, 'no edit');
    // An instruction: the server rewrites the selected lines with workspace/applyEdit.
    host.answers.inputBox.push('add type hints');
    const applied = host.recorded.appliedEdits;
    await withTimeout(run(), ACTION_MS, 'the rewrite');
    assert.equal(host.recorded.inputBoxes.length, 2);
    assert.ok(
      host.recorded.progress.some((p) => p.location === host.vscode.ProgressLocation.Notification && p.cancellable && /rewriting/.test(p.title)),
      'a cancellable progress notification',
    );
    assert.equal(host.recorded.appliedEdits, applied + 1, 'the edit was applied');
    assert.ok(!host.recorded.messages.some((m) => /rewrite failed/.test(m.message)), JSON.stringify(host.recorded.messages));
    const after = doc.getText().split('\n');
    assert.notDeepEqual(after, lines);
    assert.deepEqual(after.slice(0, start), lines.slice(0, start), 'unchanged above');
    const below = lines.slice(start + 2);
    assert.deepEqual(after.slice(after.length - below.length), below, 'unchanged below');
  });

  step('a server that keeps exiting is restarted 3 times, then the extension stops and says so', async () => {
    const killed = new Set();
    for (let i = 0; i < 4; i++) {
      const pid = await until(() => childPids().find((p) => !killed.has(p)), 30000, `server process ${i + 1}`);
      killed.add(pid);
      process.kill(pid, 'SIGKILL');
    }
    const shown = host.recorded.messages.length;
    await until(() => host.recorded.messages.some((m) => /will not be restarted/.test(m.message)), 30000, 'the message');
    await until(() => status.text === '$(error) fimls', 10000, 'the error status');
    assert.match(status.tooltip, /keeps exiting/);
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(childPids(), [], 'no fifth start');
    const errors = host.recorded.messages.slice(shown).filter((m) => m.kind === 'error');
    assert.equal(errors.length, 1, `one error message, not one per restart: ${JSON.stringify(errors)}`);
  });

  step('fimls: Restart server starts it again', async () => {
    await host.vscode.commands.executeCommand('fimls.restart');
    await until(() => status.text === '$(sparkle) fimls', READY_MS, 'the ready status');
    assert.equal(childPids().length, 1, 'one server process');
    assert.equal(host.recorded.contexts['fimls.running'], true);
  });

  step('deactivation shuts the server down: no process left', async () => {
    await extension.deactivate();
    extension = undefined;
    await until(() => childPids().length === 0, 10000, 'the server to exit');
  });
});
