/** Names shared with the fimls server, and the extension's own command ids. Pure. */

/** Server notification: the model's state (`StatusParams` in status.ts). */
export const STATUS_NOTIFICATION = 'fimls/status';
/** Server request (params `{}`): counters, latency percentiles, acceptances. */
export const STATS_REQUEST = 'fimls/stats';

/** Server command: the user accepted an inline suggestion (argument: the item's receipt). */
export const ACCEPTED_COMMAND = 'fimls.accepted';
/** Server command: rewrite a selection, arguments `[data, instruction]`. */
export const REWRITE_COMMAND = 'fimls.rewrite';

/** Extension commands (contributed in package.json). */
export const COMMANDS = {
  rewriteSelection: 'fimls.rewriteSelection',
  restart: 'fimls.restart',
  showStats: 'fimls.showStats',
  showLog: 'fimls.showLog',
} as const;

/**
 * Internal extension command that inline items carry instead of `fimls.accepted`: it
 * tells the acceptance tracker, then runs `fimls.accepted` on the server.
 */
export const INLINE_ACCEPTED_COMMAND = 'fimls.inlineAccepted';

/** JSON-RPC / LSP error codes the extension tells apart. */
export const ErrorCodes = {
  InvalidParams: -32602,
  RequestCancelled: -32800,
  ContentModified: -32801,
  RequestFailed: -32803,
} as const;
