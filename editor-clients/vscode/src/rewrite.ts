/**
 * "Rewrite selection…": the server lists it as a code action whose command is
 * `fimls.rewrite [data]`; the instruction comes from the user, and the server is asked
 * with `workspace/executeCommand fimls.rewrite [data, instruction]`, to which it answers by
 * sending the edit with `workspace/applyEdit`. Pure: no `vscode` import.
 */

import { COMMANDS, ErrorCodes, REWRITE_COMMAND } from './protocol';

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

/** A command as LSP and VS Code carry it. */
export interface CommandLike {
  title: string;
  command: string;
  arguments?: unknown[];
}

/** `textDocument/codeAction` params (LSP's CodeActionParams). */
export interface CodeActionParams {
  textDocument: { uri: string };
  range: Range;
  context: { diagnostics: never[]; only: string[]; triggerKind: 1 | 2 };
}

/** `textDocument/codeAction` params asking for the rewrite action of a selection. */
export function rewriteActionsParams(uri: string, range: Range): CodeActionParams {
  return {
    textDocument: { uri },
    range,
    context: { diagnostics: [], only: ['refactor.rewrite'], triggerKind: 1 /* Invoked */ },
  };
}

/**
 * The `data` argument of the rewrite action in a `textDocument/codeAction` answer (the
 * server's command, or the extension's after `redirectRewrite`), or undefined.
 */
export function findRewriteData(actions: unknown): unknown {
  if (!Array.isArray(actions)) {
    return undefined;
  }
  for (const action of actions) {
    const command = isCommand(action) ? action : isCommand(action?.command) ? action.command : undefined;
    if (
      command !== undefined &&
      (command.command === REWRITE_COMMAND || command.command === COMMANDS.rewriteSelection) &&
      command.arguments !== undefined &&
      command.arguments.length > 0
    ) {
      return command.arguments[0];
    }
  }
  return undefined;
}

/** The instruction typed by the user, trimmed; undefined when there is none. */
export function cleanInstruction(text: string | undefined): string | undefined {
  const trimmed = text?.trim();
  return trimmed ? trimmed : undefined;
}

/** The `workspace/executeCommand` params that run the rewrite. */
export function rewriteRequest(data: unknown, instruction: string) {
  return { command: REWRITE_COMMAND, arguments: [data, instruction] };
}

/**
 * The command a listed "Rewrite selection…" action should run in VS Code: the
 * extension's own command, which asks for the instruction first. Other commands as they are.
 */
export function redirectRewrite<C extends CommandLike>(command: C): C {
  if (command.command !== REWRITE_COMMAND) {
    return command;
  }
  return { ...command, command: COMMANDS.rewriteSelection };
}

/** What to tell the user when the rewrite request failed; undefined when it was cancelled. */
export function rewriteFailure(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case ErrorCodes.RequestCancelled:
      return undefined;
    case ErrorCodes.ContentModified:
      return 'fimls: the document changed while the rewrite was prepared; run it again.';
    default:
      return `fimls: rewrite failed: ${message}`;
  }
}

function isCommand(value: unknown): value is CommandLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as CommandLike).command === 'string' &&
    typeof (value as CommandLike).title === 'string'
  );
}
