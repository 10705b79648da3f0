'use strict';
/**
 * An LSP session with the real `fimls --stdio`, driven through vscode-languageserver-protocol
 * (the protocol library vscode-languageclient is built on). It plays VS Code's part: it
 * answers every request the server sends (configuration, progress, applyEdit, ...), keeps
 * the open documents' text and versions, and records notifications.
 */

const { spawn } = require('child_process');
const { once } = require('events');
const path = require('path');
const {
  createProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
  CancellationTokenSource,
} = require('vscode-languageserver-protocol/node');

const { applyTextEdits, applyWorkspaceEdit, offsetAt } = require('./edits');

const REPO = path.resolve(__dirname, '..', '..', '..', '..');

/** The server command: $FIMLS, else the checkout's virtual environment. */
function fimlsCommand() {
  return process.env.FIMLS || path.join(REPO, '.venv', 'bin', 'fimls');
}

class Session {
  /**
   * @param {object} o
   * @param {string} o.command server executable
   * @param {string[]} o.args its arguments
   * @param {object} o.env extra environment
   * @param {object} o.capabilities client capabilities for `initialize`
   * @param {object} o.initializationOptions
   * @param {object} o.configuration the answer to `workspace/configuration` section `fimls`
   * @param {string} o.rootUri the workspace folder
   */
  constructor(o) {
    this.options = o;
    this.docs = {}; // uri -> {text, version, languageId}
    this.statuses = []; // {state, message, model, at}
    this.messages = []; // window/showMessage params
    this.logs = []; // window/logMessage params
    this.serverRequests = []; // methods of requests the server sent
    this.applyEdits = []; // workspace/applyEdit params
    this.stderr = '';
    this.exited = false;
    this.statusWaiters = [];
  }

  async start() {
    const o = this.options;
    this.proc = spawn(o.command, o.args, {
      env: { ...process.env, ...o.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-20000);
    });
    this.exitPromise = once(this.proc, 'exit').then(([code, signal]) => {
      this.exited = true;
      this.exitCode = code;
      this.exitSignal = signal;
    });
    const spawnError = once(this.proc, 'error').then(([e]) => e);
    const conn = createProtocolConnection(new StreamMessageReader(this.proc.stdout), new StreamMessageWriter(this.proc.stdin));
    this.conn = conn;
    conn.onNotification('fimls/status', (params) => {
      this.statuses.push({ ...params, at: Date.now() });
      for (const w of [...this.statusWaiters]) w();
    });
    conn.onNotification('window/showMessage', (p) => this.messages.push(p));
    conn.onNotification('window/logMessage', (p) => this.logs.push(p));
    conn.onNotification('$/progress', () => {});
    conn.onRequest((method, params) => {
      this.serverRequests.push(method);
      switch (method) {
        case 'workspace/configuration':
          return params.items.map((item) => (item.section === 'fimls' ? o.configuration : null));
        case 'workspace/applyEdit':
          return this.onApplyEdit(params);
        case 'workspace/workspaceFolders':
          return [{ uri: o.rootUri, name: 'workspace' }];
        default:
          // window/workDoneProgress/create, client/registerCapability, ...: accepted.
          return null;
      }
    });
    conn.listen();
    const init = conn.sendRequest('initialize', {
      processId: process.pid,
      clientInfo: { name: 'Visual Studio Code', version: '1.91.0' },
      locale: 'en',
      rootUri: o.rootUri,
      rootPath: null,
      workspaceFolders: [{ uri: o.rootUri, name: 'workspace' }],
      capabilities: o.capabilities,
      initializationOptions: o.initializationOptions,
      trace: 'off',
    });
    const result = await Promise.race([
      init,
      spawnError.then((e) => Promise.reject(e)),
      this.exitPromise.then(() => Promise.reject(new Error(`server exited: ${this.stderr.slice(-2000)}`))),
    ]);
    this.initializeResult = result;
    await conn.sendNotification('initialized', {});
    return result;
  }

  /** A workspace/applyEdit from the server: apply it, as VS Code does. */
  onApplyEdit(params) {
    this.applyEdits.push(params);
    return this.applyEdit(params.edit);
  }

  /**
   * Apply a WorkspaceEdit to the open documents and send the didChange VS Code would
   * send; all or nothing (versions are checked first).
   */
  applyEdit(edit) {
    const docs = structuredClone(this.docs);
    try {
      const changed = applyWorkspaceEdit(docs, edit);
      this.docs = docs;
      for (const uri of changed) {
        const doc = this.docs[uri];
        doc.version += 1;
        void this.conn.sendNotification('textDocument/didChange', {
          textDocument: { uri, version: doc.version },
          contentChanges: [{ text: doc.text }],
        });
      }
      return { applied: true };
    } catch (e) {
      return { applied: false, failureReason: String(e.message) };
    }
  }

  /** Wait until a `fimls/status` after index `from` satisfies `predicate`. */
  waitForStatus(predicate, timeoutMs, from = 0) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.statuses.slice(from).find(predicate);
        if (found) {
          clearTimeout(timer);
          this.statusWaiters = this.statusWaiters.filter((w) => w !== check);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        this.statusWaiters = this.statusWaiters.filter((w) => w !== check);
        reject(new Error(`no matching fimls/status within ${timeoutMs} ms; got ${JSON.stringify(this.statuses)}`));
      }, timeoutMs);
      this.statusWaiters.push(check);
      check();
    });
  }

  open(uri, languageId, text) {
    this.docs[uri] = { text, version: 1, languageId };
    return this.conn.sendNotification('textDocument/didOpen', {
      textDocument: { uri, languageId, version: 1, text },
    });
  }

  /** Replace `range` with `text` in a document (one incremental change, as VS Code sends). */
  edit(uri, range, text) {
    const doc = this.docs[uri];
    doc.text = applyTextEdits(doc.text, [{ range, newText: text }]);
    doc.version += 1;
    return this.conn.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: doc.version },
      contentChanges: [{ range, text }],
    });
  }

  /** The position at the end of a document. */
  end(uri) {
    const text = this.docs[uri].text;
    return positionOf(text, text.length);
  }

  /** The position just after `needle` (its first occurrence) in a document. */
  positionAfter(uri, needle) {
    const text = this.docs[uri].text;
    const at = text.indexOf(needle);
    if (at < 0) throw new Error(`${JSON.stringify(needle)} not in ${uri}`);
    return positionOf(text, at + needle.length);
  }

  inlineCompletion(uri, position, token) {
    const params = { textDocument: { uri }, position, context: { triggerKind: 2 /* Automatic */ } };
    return this.request('textDocument/inlineCompletion', params, token);
  }

  /** A request; with a token, cancelling it sends `$/cancelRequest`. */
  request(method, params, token) {
    // vscode-jsonrpc takes a trailing undefined for a second parameter: pass only what is set.
    return token ? this.conn.sendRequest(method, params, token) : this.conn.sendRequest(method, params);
  }

  stats() {
    return this.conn.sendRequest('fimls/stats', {});
  }

  /** shutdown + exit; kill the process if it does not exit within `timeoutMs`. */
  async stop(timeoutMs = 10000) {
    if (!this.proc || this.exited) return;
    try {
      await withTimeout(this.conn.sendRequest('shutdown'), timeoutMs, 'shutdown');
      await this.conn.sendNotification('exit');
      await withTimeout(this.exitPromise, timeoutMs, 'exit');
    } finally {
      this.kill();
    }
  }

  kill() {
    if (this.proc && !this.exited) this.proc.kill('SIGKILL');
    if (this.conn) this.conn.dispose();
  }
}

function positionOf(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split('\n').length - 1;
  const character = offset - (before.lastIndexOf('\n') + 1);
  return { line, character };
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const READY_MS = 60000; // model load (1-3 s here), generous for a loaded machine
const ANSWER_MS = 60000; // one completion
const ACTION_MS = 120000; // one code action (1-5 s alone; much more on a loaded machine)

/** The Python file both the protocol tests and the extension tests open. */
const SOURCE = [
  'import math',
  '',
  '',
  'def add(a, b):',
  '    return ',
  '',
  '',
  'def scale(values, factor):',
  '    result = [v * factor for v in values]',
  '    return result',
  '',
].join('\n');

module.exports = {
  Session, fimlsCommand, positionOf, offsetAt, withTimeout, CancellationTokenSource, REPO,
  READY_MS, ANSWER_MS, ACTION_MS, SOURCE,
};
