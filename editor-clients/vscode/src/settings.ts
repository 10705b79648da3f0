/**
 * From VS Code's `fimls` configuration section to what the server and the client need.
 *
 * All settings live under `fimls.*` in settings.json. `fimls.server.*` (how to start the
 * server) and `fimls.trace.*` (vscode-languageclient's protocol trace) belong to the
 * extension; every other key is a server setting and goes to the server unchanged, as
 * `initializationOptions` at start and as the answer to `workspace/configuration`
 * (section `fimls`) and `workspace/didChangeConfiguration` afterwards. Pure: no `vscode`.
 */

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** The configuration section, and the name of the server's settings namespace. */
export const SECTION = 'fimls';

/** Keys of the section that configure the extension, never sent to the server. */
export const CLIENT_KEYS: readonly string[] = ['server', 'trace'];

/** How to start the server, from `fimls.server.*`. */
export interface Launch {
  command: string;
  args: string[];
  /** Variables added to the extension host's environment. */
  env: Record<string, string>;
}

export const DEFAULT_LAUNCH: Launch = { command: 'fimls', args: ['--stdio'], env: {} };

/**
 * The server's settings from the `fimls` section as VS Code gives it (nested objects,
 * declared defaults filled in): a JSON copy without the extension's own keys.
 */
export function serverSettings(section: unknown): JsonObject {
  const out: JsonObject = {};
  if (!isObject(section)) {
    return out;
  }
  for (const [key, value] of Object.entries(section)) {
    if (CLIENT_KEYS.includes(key)) {
      continue;
    }
    const json = toJson(value);
    if (json !== undefined) {
      out[key] = json;
    }
  }
  return out;
}

/**
 * Nest dotted keys the way VS Code's configuration does: `{"fimls.completion.maxLines": 4}`
 * gives `{completion: {maxLines: 4}}` for the prefix `fimls.`. Keys outside the prefix are
 * left out; a later, longer key wins over an object value it lies in.
 */
export function nest(flat: Record<string, unknown>, prefix = `${SECTION}.`): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(flat)) {
    if (!key.startsWith(prefix)) {
      continue;
    }
    const path = key.slice(prefix.length).split('.');
    let node: JsonObject = out;
    for (const part of path.slice(0, -1)) {
      const next = node[part];
      if (!isObject(next)) {
        node[part] = {};
      }
      node = node[part] as JsonObject;
    }
    const json = toJson(value);
    if (json !== undefined) {
      node[path[path.length - 1]] = json;
    }
  }
  return out;
}

/**
 * The server's launch from the `fimls` section: `server.command` (a leading `~/` is the
 * home folder), `server.args` and `server.env`. Values of the wrong type are reported in
 * `problems` and replaced by the defaults.
 */
export function launchSettings(section: unknown, home: string): { launch: Launch; problems: string[] } {
  const problems: string[] = [];
  const server = isObject(section) && isObject(section.server) ? section.server : {};
  let command = DEFAULT_LAUNCH.command;
  if (typeof server.command === 'string' && server.command.trim() !== '') {
    command = expandHome(server.command.trim(), home);
  } else if (server.command !== undefined) {
    problems.push('"fimls.server.command" must be a non-empty string; using "fimls"');
  }
  let args = [...DEFAULT_LAUNCH.args];
  if (Array.isArray(server.args) && server.args.every((a) => typeof a === 'string')) {
    args = [...(server.args as string[])];
  } else if (server.args !== undefined) {
    problems.push('"fimls.server.args" must be an array of strings; using ["--stdio"]');
  }
  const env: Record<string, string> = {};
  if (isObject(server.env)) {
    for (const [name, value] of Object.entries(server.env)) {
      if (typeof value === 'string') {
        env[name] = value;
      } else {
        problems.push(`"fimls.server.env" value of ${name} must be a string; ignored`);
      }
    }
  } else if (server.env !== undefined && server.env !== null) {
    problems.push('"fimls.server.env" must be an object of strings; ignored');
  }
  return { launch: { command, args, env }, problems };
}

/** `~` or `~/x` made absolute with `home`; anything else as it is. */
export function expandHome(path: string, home: string): string {
  if (path === '~') {
    return home;
  }
  if (path.startsWith('~/') || path.startsWith('~\\')) {
    return home.replace(/[\\/]+$/, '') + path.slice(1);
  }
  return path;
}

/** Whether a change of these dotted keys needs the server process restarted. */
export function needsRestart(affects: (key: string) => boolean): boolean {
  return affects(`${SECTION}.server`);
}

/** A JSON copy of a value: functions and `undefined` dropped, objects made plain. */
export function toJson(value: unknown): Json | undefined {
  if (value === null) {
    return null;
  }
  switch (typeof value) {
    case 'boolean':
    case 'string':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : undefined;
    case 'object': {
      if (Array.isArray(value)) {
        return value.map((v) => toJson(v) ?? null);
      }
      const out: JsonObject = {};
      for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
        const json = toJson(v);
        if (json !== undefined) {
          out[key] = json;
        }
      }
      return out;
    }
    default:
      return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
