'use strict';
/**
 * The client capabilities vscode-languageclient declares in `initialize`, computed by the
 * library itself: its `LanguageClient` is loaded with a stand-in for the `vscode` module
 * (which exists only inside VS Code) and asked for `computeClientCapabilities()`.
 */

const Module = require('module');

/** A stand-in for any part of the vscode API: every property and call gives another one. */
function anything(name) {
  const target = function () {};
  return new Proxy(target, {
    get(_t, prop) {
      if (prop === Symbol.toPrimitive) return () => name;
      if (prop === 'then') return undefined; // not a promise
      return anything(`${name}.${String(prop)}`);
    },
    apply: () => anything(`${name}()`),
    construct: () => anything(`new ${name}`),
  });
}

function withFakeVscode(version, fn) {
  const fake = new Proxy({}, { get: (_t, prop) => (prop === 'version' ? version : anything(`vscode.${String(prop)}`)) });
  const load = Module._load;
  Module._load = function (request, ...rest) {
    return request === 'vscode' ? fake : load.call(this, request, ...rest);
  };
  try {
    return fn();
  } finally {
    Module._load = load;
  }
}

/**
 * Capabilities of vscode-languageclient as the extension configures it.
 * @param {string} vscodeVersion the VS Code version to claim (the engine's minimum)
 */
function languageClientCapabilities(vscodeVersion) {
  return withFakeVscode(vscodeVersion, () => {
    const { LanguageClient } = require('vscode-languageclient/node');
    const client = new LanguageClient('fimls', 'fimls', { command: 'fimls', args: ['--stdio'] }, {
      documentSelector: [{ language: 'python', scheme: 'file' }],
    });
    return JSON.parse(JSON.stringify(client.computeClientCapabilities()));
  });
}

module.exports = { languageClientCapabilities };
