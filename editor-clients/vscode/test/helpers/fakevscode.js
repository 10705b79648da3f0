'use strict';
/**
 * A stand-in for the `vscode` module, enough of it to activate the compiled extension
 * (out/extension.js) with the real vscode-languageclient and the real server: documents,
 * editors, configuration, commands, providers, status bar items, messages, input boxes and
 * workspace edits behave as VS Code's do for what the extension and the library use; the
 * rest of the API answers with inert stand-ins. Everything the extension shows is recorded
 * so that tests can read it (status bar text, messages, the log).
 */

const Module = require('module');
const { URL, pathToFileURL, fileURLToPath } = require('url');

// -- value types ----------------------------------------------------------------------

class Position {
  constructor(line, character) {
    this.line = line;
    this.character = character;
  }
  isEqual(o) {
    return this.line === o.line && this.character === o.character;
  }
  isBefore(o) {
    return this.line < o.line || (this.line === o.line && this.character < o.character);
  }
  isBeforeOrEqual(o) {
    return this.isBefore(o) || this.isEqual(o);
  }
  isAfter(o) {
    return !this.isBeforeOrEqual(o);
  }
  isAfterOrEqual(o) {
    return !this.isBefore(o);
  }
  compareTo(o) {
    return this.isBefore(o) ? -1 : this.isEqual(o) ? 0 : 1;
  }
  translate(lineDelta = 0, characterDelta = 0) {
    return new Position(this.line + lineDelta, this.character + characterDelta);
  }
  with(line = this.line, character = this.character) {
    return new Position(line, character);
  }
}

class Range {
  constructor(a, b, c, d) {
    if (typeof a === 'number') {
      a = new Position(a, b);
      b = new Position(c, d);
    }
    [this.start, this.end] = a.isBeforeOrEqual(b) ? [a, b] : [b, a];
  }
  get isEmpty() {
    return this.start.isEqual(this.end);
  }
  get isSingleLine() {
    return this.start.line === this.end.line;
  }
  contains(p) {
    if (p instanceof Range) return this.contains(p.start) && this.contains(p.end);
    return p.isAfterOrEqual(this.start) && p.isBeforeOrEqual(this.end);
  }
  isEqual(o) {
    return this.start.isEqual(o.start) && this.end.isEqual(o.end);
  }
  with(start = this.start, end = this.end) {
    return new Range(start, end);
  }
}

class Selection extends Range {
  constructor(anchor, active, c, d) {
    if (typeof anchor === 'number') {
      anchor = new Position(anchor, active);
      active = new Position(c, d);
    }
    super(anchor, active);
    this.anchor = anchor;
    this.active = active;
  }
}

class Uri {
  constructor(text) {
    const url = new URL(text);
    this.scheme = url.protocol.replace(/:$/, '');
    this.authority = url.host;
    this.path = decodeURIComponent(url.pathname);
    this.query = url.search.replace(/^\?/, '');
    this.fragment = url.hash.replace(/^#/, '');
    this._text = text;
  }
  static parse(text) {
    return new Uri(text);
  }
  static file(fsPath) {
    return new Uri(pathToFileURL(fsPath).href);
  }
  get fsPath() {
    return this.scheme === 'file' ? fileURLToPath(this._text) : this.path;
  }
  with(change) {
    return Uri.parse(`${change.scheme ?? this.scheme}:${change.path ?? this.path}`);
  }
  toString() {
    return this._text;
  }
  toJSON() {
    return this._text;
  }
}

class Disposable {
  constructor(fn) {
    this._fn = fn;
  }
  static from(...items) {
    return new Disposable(() => items.forEach((d) => d && d.dispose && d.dispose()));
  }
  dispose() {
    if (this._fn) this._fn();
    this._fn = undefined;
  }
}

class EventEmitter {
  constructor() {
    this.listeners = new Set();
    this.event = (listener, thisArg, disposables) => {
      const bound = thisArg ? listener.bind(thisArg) : listener;
      this.listeners.add(bound);
      const d = new Disposable(() => this.listeners.delete(bound));
      if (Array.isArray(disposables)) disposables.push(d);
      return d;
    };
  }
  fire(value) {
    for (const l of [...this.listeners]) l(value);
  }
  dispose() {
    this.listeners.clear();
  }
}

class CancellationTokenSource {
  constructor() {
    const emitter = new EventEmitter();
    this._emitter = emitter;
    this.token = { isCancellationRequested: false, onCancellationRequested: emitter.event };
  }
  cancel() {
    if (!this.token.isCancellationRequested) {
      this.token.isCancellationRequested = true;
      this._emitter.fire(undefined);
    }
  }
  dispose() {
    this._emitter.dispose();
  }
}

class CancellationError extends Error {}

class TextEdit {
  constructor(range, newText) {
    this.range = range;
    this.newText = newText;
  }
  static replace(range, text) {
    return new TextEdit(range, text);
  }
  static insert(position, text) {
    return new TextEdit(new Range(position, position), text);
  }
  static delete(range) {
    return new TextEdit(range, '');
  }
}

class WorkspaceEdit {
  constructor() {
    this._edits = []; // [Uri, TextEdit]
    this._creates = [];
  }
  replace(uri, range, newText) {
    this._edits.push([uri, new TextEdit(range, newText)]);
  }
  insert(uri, position, newText) {
    this.replace(uri, new Range(position, position), newText);
  }
  delete(uri, range) {
    this.replace(uri, range, '');
  }
  set(uri, edits) {
    for (const e of edits) this._edits.push([uri, Array.isArray(e) ? e[0] : e]);
  }
  createFile(uri, options) {
    this._creates.push([uri, options]);
  }
  renameFile() {
    throw new Error('renameFile is not supported by the stand-in');
  }
  deleteFile() {
    throw new Error('deleteFile is not supported by the stand-in');
  }
  has(uri) {
    return this._edits.some(([u]) => u.toString() === uri.toString());
  }
  get size() {
    return new Set(this._edits.map(([u]) => u.toString())).size;
  }
  entries() {
    const byUri = new Map();
    for (const [uri, edit] of this._edits) {
      const key = uri.toString();
      if (!byUri.has(key)) byUri.set(key, [uri, []]);
      byUri.get(key)[1].push(edit);
    }
    return [...byUri.values()];
  }
}

class CodeActionKind {
  constructor(value) {
    this.value = value;
  }
  append(part) {
    return new CodeActionKind(this.value ? `${this.value}.${part}` : part);
  }
  contains(other) {
    return this.value === other.value || other.value.startsWith(`${this.value}.`);
  }
  intersects(other) {
    return this.contains(other) || other.contains(this);
  }
}
for (const [name, value] of Object.entries({
  Empty: '',
  QuickFix: 'quickfix',
  Refactor: 'refactor',
  RefactorExtract: 'refactor.extract',
  RefactorInline: 'refactor.inline',
  RefactorMove: 'refactor.move',
  RefactorRewrite: 'refactor.rewrite',
  Source: 'source',
  SourceOrganizeImports: 'source.organizeImports',
  SourceFixAll: 'source.fixAll',
  Notebook: 'notebook',
})) {
  CodeActionKind[name] = new CodeActionKind(value);
}

class CodeAction {
  constructor(title, kind) {
    this.title = title;
    this.kind = kind;
  }
}

class InlineCompletionItem {
  constructor(insertText, range, command) {
    this.insertText = insertText;
    this.range = range;
    this.command = command;
  }
}

class InlineCompletionList {
  constructor(items) {
    this.items = items;
  }
}

class MarkdownString {
  constructor(value = '', supportThemeIcons = false) {
    this.value = value;
    this.supportThemeIcons = supportThemeIcons;
  }
  appendText(t) {
    this.value += t;
    return this;
  }
  appendMarkdown(t) {
    this.value += t;
    return this;
  }
  appendCodeblock(code, lang = '') {
    this.value += `\n\`\`\`${lang}\n${code}\n\`\`\`\n`;
    return this;
  }
}

class SnippetString {
  constructor(value = '') {
    this.value = value;
  }
}

class ThemeColor {
  constructor(id) {
    this.id = id;
  }
}

class Location {
  constructor(uri, rangeOrPosition) {
    this.uri = uri;
    this.range = rangeOrPosition;
  }
}

class RelativePattern {
  constructor(base, pattern) {
    this.base = base;
    this.pattern = pattern;
  }
}

// -- documents --------------------------------------------------------------------------

class TextDocument {
  constructor(uri, languageId, text) {
    this.uri = uri;
    this.languageId = languageId;
    this.version = 1;
    this.text = text;
    this.isClosed = false;
    this.isDirty = false;
    this.eol = 1; // LF
  }
  get fileName() {
    return this.uri.fsPath;
  }
  get isUntitled() {
    return this.uri.scheme === 'untitled';
  }
  get lineCount() {
    return this.text.split('\n').length;
  }
  getText(range) {
    if (!range) return this.text;
    return this.text.slice(this.offsetAt(range.start), this.offsetAt(range.end));
  }
  lineAt(lineOrPosition) {
    const line = typeof lineOrPosition === 'number' ? lineOrPosition : lineOrPosition.line;
    const text = this.text.split('\n')[line];
    return {
      lineNumber: line,
      text,
      range: new Range(line, 0, line, text.length),
      rangeIncludingLineBreak: new Range(line, 0, line + 1, 0),
      firstNonWhitespaceCharacterIndex: text.length - text.trimStart().length,
      isEmptyOrWhitespace: text.trim() === '',
    };
  }
  offsetAt(position) {
    const lines = this.text.split('\n');
    let offset = 0;
    for (let i = 0; i < Math.min(position.line, lines.length); i++) offset += lines[i].length + 1;
    const line = lines[position.line] ?? '';
    return Math.min(offset + Math.min(position.character, line.length), this.text.length);
  }
  positionAt(offset) {
    const before = this.text.slice(0, offset);
    const line = before.split('\n').length - 1;
    return new Position(line, offset - (before.lastIndexOf('\n') + 1));
  }
  validatePosition(p) {
    return this.positionAt(this.offsetAt(p));
  }
  validateRange(r) {
    return new Range(this.validatePosition(r.start), this.validatePosition(r.end));
  }
  getWordRangeAtPosition() {
    return undefined;
  }
  save() {
    return Promise.resolve(true);
  }
}

// -- the host -----------------------------------------------------------------------------

/** Anything else in the API: callable, constructible, every property another stand-in. */
function inert(name) {
  const target = function () {};
  return new Proxy(target, {
    get(_t, prop) {
      if (prop === Symbol.toPrimitive) return () => name;
      if (prop === Symbol.iterator) return function* () {};
      if (prop === 'then') return undefined;
      if (prop === 'dispose') return () => {};
      return inert(`${name}.${String(prop)}`);
    },
    apply: () => inert(`${name}()`),
    construct: () => inert(`new ${name}`),
  });
}

/** Fill in the rest of a namespace with inert stand-ins. */
function withRest(name, object) {
  return new Proxy(object, {
    get(target, prop) {
      if (prop in target) return target[prop];
      if (typeof prop === 'symbol' || prop === 'then') return undefined;
      return inert(`${name}.${String(prop)}`);
    },
  });
}

const enums = {
  StatusBarAlignment: { Left: 1, Right: 2 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  InlineCompletionTriggerKind: { Invoke: 0, Automatic: 1 },
  CodeActionTriggerKind: { Invoke: 1, Automatic: 2 },
  DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2, Hint: 3 },
  DiagnosticTag: { Unnecessary: 1, Deprecated: 2 },
  TextDocumentSaveReason: { Manual: 1, AfterDelay: 2, FocusOut: 3 },
  EndOfLine: { LF: 1, CRLF: 2 },
  LogLevel: { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 },
  ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
  UIKind: { Desktop: 1, Web: 2 },
  FileType: { Unknown: 0, File: 1, Directory: 2, SymbolicLink: 64 },
  TextEditorRevealType: { Default: 0, InCenter: 1, InCenterIfOutsideViewport: 2, AtTop: 3 },
};

/** Nested object from the flat settings whose keys start with `prefix.`. */
function nested(flat, prefix) {
  const out = {};
  for (const [key, value] of Object.entries(flat)) {
    if (!key.startsWith(`${prefix}.`)) continue;
    const path = key.slice(prefix.length + 1).split('.');
    let node = out;
    for (const part of path.slice(0, -1)) node = node[part] = node[part] ?? {};
    node[path[path.length - 1]] = structuredClone(value);
  }
  return out;
}

/**
 * A stand-in VS Code.
 * @param {object} o
 * @param {Record<string, unknown>} o.settings flat settings (declared defaults and the user's)
 * @param {string} o.workspaceFolder the workspace folder's path
 */
function createHost(o) {
  const settings = { ...o.settings };
  const recorded = {
    messages: [], // {kind: 'error'|'warning'|'info', message, items}
    inputBoxes: [],
    progress: [],
    shownDocuments: [],
    contexts: {},
    appliedEdits: 0,
  };
  const answers = { inputBox: [], message: [] };
  const commands = new Map();
  const providers = { inline: [], codeActions: [] };
  const contentProviders = new Map();
  const statusItems = [];
  const channels = [];
  const documents = [];
  const events = {
    open: new EventEmitter(),
    change: new EventEmitter(),
    close: new EventEmitter(),
    save: new EventEmitter(),
    willSave: new EventEmitter(),
    configuration: new EventEmitter(),
    folders: new EventEmitter(),
    visibleEditors: new EventEmitter(),
    activeEditor: new EventEmitter(),
  };
  const folderUri = Uri.file(o.workspaceFolder);
  const workspaceFolders = [{ uri: folderUri, name: 'workspace', index: 0 }];

  const configuration = (section) => {
    const full = (key) => (section ? `${section}.${key}` : key);
    const lookup = (key) => {
      if (key in settings) return structuredClone(settings[key]);
      const inner = nested(settings, key);
      return Object.keys(inner).length > 0 ? inner : undefined;
    };
    return {
      get: (key, fallback) => {
        const value = lookup(full(key));
        return value === undefined ? fallback : value;
      },
      has: (key) => lookup(full(key)) !== undefined,
      inspect: (key) => ({ key: full(key), defaultValue: lookup(full(key)) }),
      update: () => Promise.resolve(),
    };
  };

  const message = (kind) => (text, ...items) => {
    const choices = items.filter((i) => typeof i === 'string' || (i && i.title));
    recorded.messages.push({ kind, message: text, items: choices });
    return Promise.resolve(answers.message.shift());
  };

  const match = (selector, document) => {
    const filters = Array.isArray(selector) ? selector : [selector];
    return filters.some((f) =>
      typeof f === 'string'
        ? f === document.languageId
        : (!f.language || f.language === document.languageId) && (!f.scheme || f.scheme === document.uri.scheme),
    )
      ? 10
      : 0;
  };

  const logChannel = (name) => {
    const lines = [];
    const log = (level) => (text) => lines.push(`[${level}] ${text}`);
    const channel = {
      name,
      lines,
      logLevel: enums.LogLevel.Info,
      onDidChangeLogLevel: new EventEmitter().event,
      trace: log('trace'),
      debug: log('debug'),
      info: log('info'),
      warn: log('warning'),
      error: (e) => lines.push(`[error] ${e instanceof Error ? e.message : e}`),
      append: (t) => lines.push(t),
      appendLine: (t) => lines.push(t),
      replace: () => {},
      clear: () => (lines.length = 0),
      show: () => (channel.shown = (channel.shown ?? 0) + 1),
      hide: () => {},
      dispose: () => {},
    };
    channels.push(channel);
    return channel;
  };

  const window = withRest('window', {
    activeTextEditor: undefined,
    visibleTextEditors: [],
    visibleNotebookEditors: [],
    onDidChangeVisibleTextEditors: events.visibleEditors.event,
    onDidChangeActiveTextEditor: events.activeEditor.event,
    tabGroups: withRest('tabGroups', { all: [], onDidChangeTabs: new EventEmitter().event, onDidChangeTabGroups: new EventEmitter().event }),
    createOutputChannel: (name) => logChannel(name),
    createStatusBarItem: (id, alignment, priority) => {
      const item = { id, alignment, priority, visible: false, history: [], show() { this.visible = true; }, hide() { this.visible = false; }, dispose() {} };
      let text = '';
      Object.defineProperty(item, 'text', {
        get: () => text,
        set: (t) => {
          text = t;
          item.history.push(t);
        },
      });
      statusItems.push(item);
      return item;
    },
    showErrorMessage: message('error'),
    showWarningMessage: message('warning'),
    showInformationMessage: message('info'),
    showInputBox: (options) => {
      recorded.inputBoxes.push(options);
      return Promise.resolve(answers.inputBox.shift());
    },
    withProgress: (options, task) => {
      recorded.progress.push(options);
      const source = new CancellationTokenSource();
      return Promise.resolve(task({ report: () => {} }, source.token));
    },
    showTextDocument: (doc) => {
      recorded.shownDocuments.push(doc);
      return Promise.resolve({ document: doc });
    },
  });

  const workspace = withRest('workspace', {
    workspaceFolders,
    name: 'workspace',
    rootPath: o.workspaceFolder,
    isTrusted: true,
    textDocuments: documents,
    notebookDocuments: [],
    getWorkspaceFolder: () => workspaceFolders[0],
    getConfiguration: configuration,
    onDidChangeConfiguration: events.configuration.event,
    onDidOpenTextDocument: events.open.event,
    onDidChangeTextDocument: events.change.event,
    onDidCloseTextDocument: events.close.event,
    onDidSaveTextDocument: events.save.event,
    onWillSaveTextDocument: events.willSave.event,
    onDidChangeWorkspaceFolders: events.folders.event,
    registerTextDocumentContentProvider: (scheme, provider) => {
      contentProviders.set(scheme, provider);
      return new Disposable(() => contentProviders.delete(scheme));
    },
    openTextDocument: async (uri) => {
      const provider = contentProviders.get(uri.scheme);
      if (!provider) throw new Error(`cannot open ${uri}`);
      const text = await provider.provideTextDocumentContent(uri, new CancellationTokenSource().token);
      return new TextDocument(uri, 'plaintext', text);
    },
    applyEdit: async (edit) => {
      for (const [uri, edits] of edit.entries()) {
        const doc = documents.find((d) => d.uri.toString() === uri.toString());
        if (!doc) return false;
        host.applyEdits(doc, edits);
      }
      recorded.appliedEdits += 1;
      return true;
    },
    createFileSystemWatcher: () =>
      withRest('watcher', { onDidCreate: new EventEmitter().event, onDidChange: new EventEmitter().event, onDidDelete: new EventEmitter().event, dispose() {} }),
  });

  const vscode = withRest('vscode', {
    version: '1.91.0',
    Position,
    Range,
    Selection,
    Uri,
    Disposable,
    EventEmitter,
    CancellationTokenSource,
    CancellationError,
    TextEdit,
    WorkspaceEdit,
    CodeAction,
    CodeActionKind,
    InlineCompletionItem,
    InlineCompletionList,
    MarkdownString,
    SnippetString,
    ThemeColor,
    Location,
    RelativePattern,
    ...enums,
    window,
    workspace,
    commands: withRest('commands', {
      registerCommand: (id, fn) => {
        if (commands.has(id)) throw new Error(`command '${id}' already exists`);
        commands.set(id, fn);
        return new Disposable(() => commands.delete(id));
      },
      executeCommand: async (id, ...args) => {
        if (id === 'setContext') {
          recorded.contexts[args[0]] = args[1];
          return undefined;
        }
        const fn = commands.get(id);
        if (!fn) throw new Error(`command '${id}' not found`);
        return fn(...args);
      },
      getCommands: async () => [...commands.keys()],
    }),
    languages: withRest('languages', {
      match,
      registerInlineCompletionItemProvider: (selector, provider) => {
        const entry = { selector, provider };
        providers.inline.push(entry);
        return new Disposable(() => providers.inline.splice(providers.inline.indexOf(entry), 1));
      },
      registerCodeActionsProvider: (selector, provider, metadata) => {
        const entry = { selector, provider, metadata };
        providers.codeActions.push(entry);
        return new Disposable(() => providers.codeActions.splice(providers.codeActions.indexOf(entry), 1));
      },
      createDiagnosticCollection: () =>
        withRest('diagnostics', { set() {}, delete() {}, clear() {}, forEach() {}, get: () => [], has: () => false, dispose() {} }),
      getLanguages: async () => [],
    }),
    env: withRest('env', { appName: 'Visual Studio Code', language: 'en', machineId: 'test', sessionId: 'test', uiKind: 1, openExternal: async () => true }),
    extensions: withRest('extensions', { all: [], getExtension: () => undefined }),
    l10n: withRest('l10n', { t: (text, ...args) => String(text).replace(/\{(\d+)\}/g, (_, i) => String(args[i])) }),
  });

  const host = {
    vscode,
    settings,
    recorded,
    answers,
    commands,
    providers,
    statusItems,
    channels,
    documents,
    Position,
    Range,
    Selection,
    Uri,
    CancellationTokenSource,
    /** Open a document (VS Code: the user opens a file, or `untitled:` a new editor). */
    open(pathOrUri, languageId, text) {
      const uri = /^[a-z]+:/.test(pathOrUri) ? Uri.parse(pathOrUri) : Uri.file(pathOrUri);
      const doc = new TextDocument(uri, languageId, text);
      documents.push(doc);
      events.open.fire(doc);
      return doc;
    },
    close(doc) {
      documents.splice(documents.indexOf(doc), 1);
      doc.isClosed = true;
      events.close.fire(doc);
    },
    /** Edit a document as the editor does: one change event with the changes. */
    applyEdits(doc, edits) {
      const sorted = [...edits].sort((a, b) => doc.offsetAt(b.range.start) - doc.offsetAt(a.range.start));
      const contentChanges = sorted.map((e) => ({
        range: e.range,
        rangeOffset: doc.offsetAt(e.range.start),
        rangeLength: doc.offsetAt(e.range.end) - doc.offsetAt(e.range.start),
        text: e.newText,
      }));
      for (const c of contentChanges) doc.text = doc.text.slice(0, c.rangeOffset) + c.text + doc.text.slice(c.rangeOffset + c.rangeLength);
      doc.version += 1;
      doc.isDirty = true;
      events.change.fire({ document: doc, contentChanges, reason: undefined });
    },
    /** Change settings (flat keys) and tell listeners, as the Settings editor does. */
    configure(changes) {
      Object.assign(settings, changes);
      const keys = Object.keys(changes);
      events.configuration.fire({
        affectsConfiguration: (section) => keys.some((k) => k === section || k.startsWith(`${section}.`) || section.startsWith(`${k}.`)),
      });
    },
    setActiveEditor(doc, selection) {
      window.activeTextEditor = doc ? { document: doc, selection, selections: [selection] } : undefined;
    },
    /** Load `modulePath` (and everything it requires) with this stand-in as `vscode`. */
    load(modulePath) {
      const load = Module._load;
      Module._load = function (request, ...rest) {
        return request === 'vscode' ? vscode : load.call(this, request, ...rest);
      };
      try {
        return require(modulePath);
      } finally {
        Module._load = load;
      }
    },
  };
  return host;
}

module.exports = { createHost };
