/**
 * What the status bar item shows, from the server's `fimls/status` notification and the
 * client's own state. Pure: no `vscode` import, so it is unit-tested under plain node.
 */

/** The server's model states, as sent in `fimls/status`. */
export type ServerState = 'unloaded' | 'loading' | 'ready' | 'busy' | 'error' | 'unavailable';

/** The params of `fimls/status`. */
export interface StatusParams {
  state: ServerState | string;
  message?: string;
  model?: ModelInfo | null;
}

/** The `model` object of `fimls/status` (the fields shown here; the server sends more). */
export interface ModelInfo {
  name?: string;
  description?: string;
  path?: string;
  template?: string;
  contextSize?: number;
  threads?: number;
  loadSeconds?: number;
}

/** What the status bar item shows. */
export interface StatusView {
  /** The item's text, with a codicon (`$(name)`) first. */
  text: string;
  /** Hover text (plain text, several lines). */
  tooltip: string;
  /** Whether to paint the item with the error background. */
  error: boolean;
}

const NAME = 'fimls';
const CLICK = 'Click for statistics.';

/** The view for a `fimls/status` notification. */
export function describeStatus(status: StatusParams): StatusView {
  const message = (status.message ?? '').trim();
  const model = describeModel(status.model);
  switch (status.state) {
    case 'ready':
      return view('$(sparkle)', lines(`fimls: ready${model ? ` (${model})` : ''}`, CLICK));
    case 'busy':
      return view('$(sync~spin)', lines(`fimls: ${message || 'generating'}`, model, CLICK));
    case 'loading':
      return view('$(sync~spin)', lines(`fimls: loading the model${message ? `: ${message}` : ''}`));
    case 'unloaded':
      return view('$(circle-outline)', lines('fimls: no model loaded yet', message));
    case 'unavailable':
      // an inference server that does not answer now: the server tries it again by itself
      return view(
        '$(debug-disconnect)',
        lines(`fimls: the engine does not answer: ${message || 'unavailable'}`, 'Completions resume when it answers.'),
        true,
      );
    case 'error':
      return view('$(error)', lines(`fimls: ${message || 'error'}`, 'Click for the server log.'), true);
    default:
      return view('$(question)', lines(`fimls: unknown state ${JSON.stringify(status.state)}`, message));
  }
}

/** The view while the client starts the server process. */
export function describeStarting(command: string): StatusView {
  return view('$(sync~spin)', `fimls: starting ${command}`);
}

/** The view when the server process is not running (stopped, or gave up after crashes). */
export function describeStopped(reason: string): StatusView {
  return view('$(error)', lines(`fimls: ${reason}`, 'Run "fimls: Restart server" to try again.'), true);
}

/** The view when `fimls.server.command` names nothing that can be run. */
export function describeMissing(command: string): StatusView {
  return view('$(error)', serverMissingMessage(command), true);
}

/** The error message shown when `fimls.server.command` cannot be found. */
export function serverMissingMessage(command: string): string {
  return (
    `fimls: the language server "${command}" was not found. ` +
    'Install the fimls server, or set "fimls.server.command" to the full path of its `fimls` ' +
    'executable, e.g. ~/fimls/.venv/bin/fimls.'
  );
}

/** Whether the server can take completions in this state (the status is not an error). */
export function isWorking(state: string): boolean {
  return state === 'ready' || state === 'busy';
}

/** A one-line description of the loaded model, e.g. "Qwen2.5 Coder 0.5B, 4096 ctx". */
export function describeModel(model: ModelInfo | null | undefined): string {
  if (!model) {
    return '';
  }
  const parts: string[] = [];
  if (model.name) {
    parts.push(model.name);
  }
  if (model.template) {
    parts.push(`template ${model.template}`);
  }
  if (typeof model.contextSize === 'number') {
    parts.push(`${model.contextSize} ctx`);
  }
  if (typeof model.threads === 'number') {
    parts.push(`${model.threads} threads`);
  }
  return parts.join(', ');
}

function view(icon: string, tooltip: string, error = false): StatusView {
  return { text: `${icon} ${NAME}`, tooltip, error };
}

function lines(...parts: (string | undefined)[]): string {
  return parts.filter((p): p is string => !!p && p.length > 0).join('\n');
}
