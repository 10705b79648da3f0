/**
 * The fimls extension: starts `fimls --stdio` with vscode-languageclient and wires what
 * LSP leaves to the editor.
 *
 * - Inline completion is vscode-languageclient's built-in feature (LSP 3.18
 *   `textDocument/inlineCompletion`): VS Code asks as you type (with its own debounce),
 *   cancels what it no longer wants (`$/cancelRequest`), and shows the answer as ghost text.
 *   The middleware here only swaps each item's `fimls.accepted` command for the internal
 *   `fimls.inlineAccepted`, which counts whole and partial accepts (see acceptance.ts) and
 *   runs `fimls.accepted` on the server.
 * - Code actions (docstring, fix, explain, tests) are the built-in feature too, resolved
 *   lazily with `codeAction/resolve`. "Rewrite selection…" is redirected to the command
 *   `fimls.rewriteSelection`, which asks for the instruction first.
 * - A status bar item shows the server's `fimls/status`.
 * - Settings: `fimls.server.*` start the server; everything else under `fimls.*` is sent to
 *   the server (settings.ts).
 */

import * as os from 'os';
import * as vscode from 'vscode';
import {
  CloseAction,
  CodeActionRequest,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';

import { AcceptanceTracker, Receipt } from './acceptance';
import { CrashPolicy } from './crashes';
import { findExecutable } from './executable';
import { documentSelector } from './languages';
import {
  ACCEPTED_COMMAND,
  COMMANDS,
  INLINE_ACCEPTED_COMMAND,
  STATS_REQUEST,
  STATUS_NOTIFICATION,
} from './protocol';
import { cleanInstruction, findRewriteData, redirectRewrite, rewriteActionsParams, rewriteFailure, rewriteRequest } from './rewrite';
import { JsonObject, Launch, launchSettings, needsRestart, SECTION, serverSettings } from './settings';
import { formatStats } from './stats';
import {
  describeMissing,
  describeStarting,
  describeStatus,
  describeStopped,
  serverMissingMessage,
  StatusParams,
  StatusView,
} from './status';

const STATS_URI = vscode.Uri.parse('fimls:/statistics.txt');

let extension: FimlsExtension | undefined;

/**
 * vscode-languageclient's client, with its own error notifications kept in the log: the
 * extension tells the user itself, once per problem (see FimlsExtension), instead of one
 * notification per failed start or restart.
 */
class FimlsClient extends LanguageClient {
  override error(message: string, data?: unknown, showNotification?: boolean | 'force'): void {
    super.error(message, data, showNotification === 'force' ? false : showNotification);
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  extension = new FimlsExtension(context);
  await extension.serially(() => extension?.start());
}

export async function deactivate(): Promise<void> {
  const current = extension;
  extension = undefined;
  await current?.serially(() => current.stop());
}

class FimlsExtension {
  private client: LanguageClient | undefined;
  private readonly output: vscode.LogOutputChannel;
  private readonly statusItem: vscode.StatusBarItem;
  private readonly tracker = new AcceptanceTracker();
  private readonly crashes = new CrashPolicy();
  private readonly statsChanged = new vscode.EventEmitter<vscode.Uri>();
  private statsText = '';
  /** Set while the extension stops or restarts the server itself. */
  private stopping = false;
  /** Why the server is not running, once the extension gave up on it. */
  private stopReason: string | undefined;
  /** Starts, stops and restarts, one after the other. */
  private lifecycle: Promise<void> = Promise.resolve();

  constructor(context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel('fimls', { log: true });
    this.statusItem = vscode.window.createStatusBarItem('fimls.status', vscode.StatusBarAlignment.Right, 100);
    this.statusItem.name = 'fimls';
    const subscriptions = context.subscriptions;
    subscriptions.push(
      this.output,
      this.statusItem,
      this.statsChanged,
      vscode.commands.registerCommand(COMMANDS.rewriteSelection, (data?: unknown) => this.rewriteSelection(data)),
      vscode.commands.registerCommand(COMMANDS.restart, () => this.serially(() => this.restart())),
      vscode.commands.registerCommand(COMMANDS.showStats, () => this.showStats()),
      vscode.commands.registerCommand(COMMANDS.showLog, () => this.output.show(true)),
      vscode.commands.registerCommand(INLINE_ACCEPTED_COMMAND, (receipt: Receipt, key?: string) =>
        this.report(this.tracker.accepted(receipt, key)),
      ),
      vscode.workspace.registerTextDocumentContentProvider('fimls', {
        onDidChange: this.statsChanged.event,
        provideTextDocumentContent: () => this.statsText,
      }),
      vscode.workspace.onDidChangeTextDocument((e) =>
        this.report(this.tracker.changed(e.document.uri.toString(), e.contentChanges)),
      ),
      vscode.workspace.onDidCloseTextDocument((doc) => this.report(this.tracker.closed(doc.uri.toString()))),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (needsRestart((key) => e.affectsConfiguration(key))) {
          void this.serially(() => this.restart());
        }
      }),
    );
  }

  /** Run a start, stop or restart after the ones already asked for. */
  serially(step: () => Promise<void> | undefined): Promise<void> {
    const next = this.lifecycle.then(step).catch((error: unknown) => this.output.error(messageOf(error)));
    this.lifecycle = next;
    return next;
  }

  /** Start the server, unless its command cannot be found (then say so, once). */
  async start(): Promise<void> {
    const section = vscode.workspace.getConfiguration().get<unknown>(SECTION);
    const { launch, problems } = launchSettings(section, os.homedir());
    for (const problem of problems) {
      this.output.warn(problem);
    }
    const env = { ...process.env, ...launch.env };
    if (findExecutable(launch.command, env) === undefined) {
      this.show(describeMissing(launch.command));
      this.output.error(serverMissingMessage(launch.command));
      void vscode.window
        .showErrorMessage(serverMissingMessage(launch.command), 'Open Settings', 'Show Log')
        .then((choice) => {
          if (choice === 'Open Settings') {
            void vscode.commands.executeCommand('workbench.action.openSettings', 'fimls.server.command');
          } else if (choice === 'Show Log') {
            this.output.show(true);
          }
        });
      return;
    }
    const client = this.createClient(launch, env);
    this.client = client;
    this.stopReason = undefined;
    this.show(describeStarting(launch.command));
    try {
      await client.start();
    } catch (error) {
      this.stopReason = `could not start the language server: ${messageOf(error)}`;
      this.show(describeStopped(this.stopReason));
      this.notifyError(`fimls: ${this.stopReason}`);
    }
  }

  /** Stop the server (when the extension deactivates, or before a restart). */
  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client === undefined) {
      return;
    }
    this.report(this.tracker.closed(), client);
    this.stopping = true;
    try {
      if (client.needsStop()) {
        await client.stop(5000);
      }
    } catch (error) {
      this.output.warn(`stopping the server: ${messageOf(error)}`);
    } finally {
      this.stopping = false;
      await client.dispose().catch(() => undefined);
      void vscode.commands.executeCommand('setContext', 'fimls.running', false);
    }
  }

  /** Stop the server if it runs, forget past crashes, start it again. */
  private async restart(): Promise<void> {
    this.crashes.reset();
    await this.stop();
    await this.start();
  }

  private createClient(launch: Launch, env: NodeJS.ProcessEnv): LanguageClient {
    // No `transport`: vscode-languageclient would append `--stdio` to the arguments;
    // `fimls.server.args` carries it (default ["--stdio"]). The transport is stdio.
    const serverOptions: ServerOptions = { command: launch.command, args: launch.args, options: { env } };
    const clientOptions: LanguageClientOptions = {
      documentSelector: documentSelector(),
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      // Called on every (re)start, so the server gets the settings of that moment.
      initializationOptions: () => this.serverSettings(),
      synchronize: { configurationSection: SECTION },
      initializationFailedHandler: (error) => {
        this.output.error(`the server failed to initialize: ${messageOf(error)}`);
        return false; // no retry: the error is shown, "fimls: Restart server" tries again
      },
      errorHandler: {
        error: (error, _message, count) => {
          if (count !== undefined && count <= 3) {
            return { action: ErrorAction.Continue, handled: true };
          }
          this.stopReason = `the connection to the language server failed: ${messageOf(error)}`;
          this.notifyError(`fimls: ${this.stopReason}`);
          return { action: ErrorAction.Shutdown, handled: true };
        },
        closed: () => {
          if (this.crashes.shouldRestart(Date.now())) {
            this.output.warn('the language server exited; restarting it');
            return { action: CloseAction.Restart, handled: true };
          }
          this.stopReason = 'the language server keeps exiting';
          this.show(describeStopped(this.stopReason));
          this.notifyError(this.crashes.givingUpMessage());
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          const result = await next(document, position, context, token);
          const items = Array.isArray(result) ? result : result?.items;
          const item = items?.[0];
          if (item !== undefined) {
            this.trackInline(document, position, item);
          }
          return result;
        },
        provideCodeActions: async (document, range, context, token, next) => {
          const actions = await next(document, range, context, token);
          return actions?.map(redirectAction);
        },
        resolveCodeAction: async (item, token, next) => {
          const resolved = await next(item, token);
          return resolved ? redirectAction(resolved) : resolved;
        },
        workspace: {
          // `workspace/configuration` for `fimls`: the section without the client's own keys.
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) {
              return result;
            }
            return result.map((value, i) => (params.items[i]?.section === SECTION ? serverSettings(value) : value));
          },
          // Pushed changes carry the same object as `initializationOptions`.
          didChangeConfiguration: async () => {
            await client.sendNotification(DidChangeConfigurationNotification.type, {
              settings: { [SECTION]: this.serverSettings() },
            });
          },
        },
      },
    };
    const client = new FimlsClient('fimls', 'fimls', serverOptions, clientOptions);
    client.onNotification(STATUS_NOTIFICATION, (params: StatusParams) => this.show(describeStatus(params)));
    client.onDidChangeState((e) => {
      if (this.client !== client) {
        return; // a client being replaced
      }
      void vscode.commands.executeCommand('setContext', 'fimls.running', e.newState === State.Running);
      if (e.newState === State.Starting) {
        this.show(describeStarting(launch.command));
      } else if (e.newState === State.Stopped && !this.stopping) {
        this.show(describeStopped(this.stopReason ?? 'the language server is not running'));
      }
    });
    return client;
  }

  /** The server's settings from the `fimls` section (without `server.*` and `trace.*`). */
  private serverSettings(): JsonObject {
    return serverSettings(vscode.workspace.getConfiguration().get<unknown>(SECTION));
  }

  /** Count the accepts of a shown inline item: route its command through the tracker. */
  private trackInline(document: vscode.TextDocument, position: vscode.Position, item: vscode.InlineCompletionItem): void {
    const command = item.command;
    const receipt = command?.arguments?.[0] as Receipt | undefined;
    if (
      command?.command !== ACCEPTED_COMMAND ||
      typeof item.insertText !== 'string' ||
      typeof receipt !== 'object' ||
      receipt === null ||
      typeof receipt.chars !== 'number'
    ) {
      return;
    }
    const anchor = item.range?.start ?? position;
    const { key, reports } = this.tracker.shown(
      document.uri.toString(),
      { line: anchor.line, character: anchor.character },
      item.insertText,
      receipt,
    );
    item.command = { title: command.title, command: INLINE_ACCEPTED_COMMAND, arguments: [receipt, key] };
    this.report(reports);
  }

  /** Send acceptance reports to the server (`fimls.accepted`). */
  private report(reports: Receipt[], client = this.client): void {
    if (client === undefined || !client.isRunning()) {
      return;
    }
    for (const receipt of reports) {
      client
        .sendRequest(ExecuteCommandRequest.type, { command: ACCEPTED_COMMAND, arguments: [receipt] })
        .catch((error: unknown) => this.output.warn(`${ACCEPTED_COMMAND}: ${messageOf(error)}`));
    }
  }

  /** "fimls: Rewrite selection…": ask for the instruction, then let the server rewrite. */
  private async rewriteSelection(data?: unknown): Promise<void> {
    const client = this.runningClient();
    if (client === undefined) {
      return;
    }
    if (data === undefined) {
      const editor = vscode.window.activeTextEditor;
      if (editor === undefined || editor.selection.isEmpty) {
        void vscode.window.showInformationMessage('fimls: select the code to rewrite first.');
        return;
      }
      if (vscode.languages.match(documentSelector(), editor.document) === 0) {
        void vscode.window.showInformationMessage(`fimls: ${editor.document.languageId} documents are not served by fimls.`);
        return;
      }
      const params = rewriteActionsParams(
        client.code2ProtocolConverter.asUri(editor.document.uri),
        client.code2ProtocolConverter.asRange(editor.selection),
      );
      try {
        data = findRewriteData(await client.sendRequest(CodeActionRequest.type, params));
      } catch (error) {
        void vscode.window.showErrorMessage(`fimls: ${messageOf(error)}`);
        return;
      }
      if (data === undefined) {
        void vscode.window.showInformationMessage(
          'fimls: nothing to rewrite here; select the lines of code to rewrite (a few dozen at most).',
        );
        return;
      }
    }
    const instruction = cleanInstruction(
      await vscode.window.showInputBox({
        title: 'fimls: Rewrite selection',
        prompt: 'How should the selected code change?',
        placeHolder: 'e.g. add type hints',
        ignoreFocusOut: true,
      }),
    );
    if (instruction === undefined) {
      return;
    }
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'fimls: rewriting the selection…', cancellable: true },
      async (_progress, token) => {
        try {
          // The server answers by sending the edit with workspace/applyEdit, which
          // vscode-languageclient applies.
          await client.sendRequest(ExecuteCommandRequest.type, rewriteRequest(data, instruction), token);
        } catch (error) {
          const message = rewriteFailure(error);
          if (message !== undefined) {
            void vscode.window.showErrorMessage(message);
          }
        }
      },
    );
  }

  /** "fimls: Show statistics": `fimls/stats` in a read-only document. */
  private async showStats(): Promise<void> {
    const client = this.runningClient();
    if (client === undefined) {
      return;
    }
    try {
      this.statsText = formatStats(await client.sendRequest(STATS_REQUEST, {}));
    } catch (error) {
      void vscode.window.showErrorMessage(`fimls: ${STATS_REQUEST} failed: ${messageOf(error)}`);
      return;
    }
    this.statsChanged.fire(STATS_URI);
    const doc = await vscode.workspace.openTextDocument(STATS_URI);
    await vscode.window.showTextDocument(doc, { preview: true });
  }

  /** The client if the server runs; else say so, show the log and return undefined. */
  private runningClient(): LanguageClient | undefined {
    if (this.client?.isRunning()) {
      return this.client;
    }
    void vscode.window.showWarningMessage('fimls: the language server is not running. See the log, or run "fimls: Restart server".');
    this.output.show(true);
    return undefined;
  }

  /** An error notification with a way to the log. */
  private notifyError(message: string): void {
    void vscode.window.showErrorMessage(message, 'Show Log').then((choice) => {
      if (choice === 'Show Log') {
        this.output.show(true);
      }
    });
  }

  private show(view: StatusView): void {
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.backgroundColor = view.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    this.statusItem.command = view.error ? COMMANDS.showLog : COMMANDS.showStats;
    this.statusItem.show();
  }
}

/** Send "Rewrite selection…" through the extension's command, which asks for the instruction. */
function redirectAction<T extends vscode.Command | vscode.CodeAction>(action: T): T {
  if (typeof action.command === 'string') {
    return redirectRewrite(action as vscode.Command) as T;
  }
  const codeAction = action as vscode.CodeAction;
  if (codeAction.command !== undefined) {
    codeAction.command = redirectRewrite(codeAction.command);
  }
  return action;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
