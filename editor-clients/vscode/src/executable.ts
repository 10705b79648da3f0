/**
 * Finding the server's executable before starting it, so that a missing `fimls` gives one
 * clear message instead of a spawn error and restart attempts. Uses `fs`, not `vscode`.
 */

import * as fs from 'fs';
import * as path from 'path';

/**
 * The path `command` runs, or undefined when there is none: a command with a folder in
 * it must be an executable file; a bare name is looked up in `PATH` (with `PATHEXT` on
 * Windows), the way the server will be spawned.
 */
export function findExecutable(
  command: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  const windows = platform === 'win32';
  const extensions = windows
    ? ['', ...(env.PATHEXT ?? '.COM;.EXE;.BAT;.CMD').split(';').filter((e) => e !== '')]
    : [''];
  const candidates = (base: string) => extensions.map((ext) => base + ext);
  if (command.includes('/') || (windows && command.includes('\\'))) {
    return candidates(command).find((file) => isExecutable(file, windows));
  }
  const dirs = (env.PATH ?? env.Path ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    const found = candidates(path.join(dir, command)).find((file) => isExecutable(file, windows));
    if (found !== undefined) {
      return found;
    }
  }
  return undefined;
}

function isExecutable(file: string, windows: boolean): boolean {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) {
      return false;
    }
    if (!windows) {
      fs.accessSync(file, fs.constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}
