'use strict';
// The manifest (package.json), the README's settings block, and what ships in out/.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');

const { ROOT, PACKAGE, PROPERTIES, PLACEHOLDER_SERVER, readmeSettings, schemaProblems, effectiveFlat, home } =
  require('./helpers/config');
const { LANGUAGES } = require('../out/languages');
const { COMMANDS } = require('../out/protocol');
const { serverSettings, nest, launchSettings, CLIENT_KEYS } = require('../out/settings');

const REPO = path.resolve(ROOT, '..', '..');
const CLIENT_PREFIXES = CLIENT_KEYS.map((k) => `fimls.${k}.`);
const isClientKey = (key) => CLIENT_PREFIXES.some((p) => key.startsWith(p));

/** The server's settings table in the repository README: key -> default. */
function serverSettingsTable() {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const begin = readme.indexOf('<!-- settings:begin -->');
  const end = readme.indexOf('<!-- settings:end -->');
  assert.ok(begin >= 0 && end > begin, 'the repository README has the settings table markers');
  const table = {};
  for (const line of readme.slice(begin, end).split('\n')) {
    const m = /^\| `(fimls\.[\w.]+)` \| `([^`]*)` \|/.exec(line);
    if (m) table[m[1]] = JSON.parse(m[2]);
  }
  return table;
}

describe('manifest', () => {
  test('identity, entry point, licence', () => {
    assert.equal(PACKAGE.name, 'fimls');
    assert.ok(PACKAGE.publisher && PACKAGE.displayName && PACKAGE.description && PACKAGE.version);
    assert.equal(PACKAGE.main, './out/extension.js');
    assert.ok(fs.existsSync(path.join(ROOT, PACKAGE.main)), 'out/extension.js is built');
    const pyproject = fs.readFileSync(path.join(REPO, 'pyproject.toml'), 'utf8');
    assert.equal(PACKAGE.license, /^license = "([^"]+)"/m.exec(pyproject)[1], 'the same licence as the server');
    assert.match(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0/);
  });

  test('engine: what vscode-languageclient needs; @types/vscode no newer than it', () => {
    const lc = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/vscode-languageclient/package.json'), 'utf8'));
    assert.ok(Number(lc.version.split('.')[0]) >= 10, 'vscode-languageclient >= 10 (inline completion built in)');
    assert.equal(PACKAGE.engines.vscode, lc.engines.vscode);
    const types = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/@types/vscode/package.json'), 'utf8'));
    const [major, minor] = PACKAGE.engines.vscode.replace(/^\^/, '').split('.').map(Number);
    const [tMajor, tMinor] = types.version.split('.').map(Number);
    assert.ok(tMajor < major || (tMajor === major && tMinor <= minor), `@types/vscode ${types.version} <= engine`);
    assert.ok(fs.existsSync(path.join(ROOT, 'package-lock.json')), 'package-lock.json for npm ci');
  });

  test('activation: one onLanguage event per served language', () => {
    assert.deepEqual(PACKAGE.activationEvents, LANGUAGES.map((l) => `onLanguage:${l}`));
    for (const l of ['python', 'javascript', 'typescript', 'typescriptreact', 'go', 'rust', 'c', 'cpp', 'java', 'ruby', 'lua']) {
      assert.ok(LANGUAGES.includes(l), l);
    }
  });

  test('commands: contributed with the fimls category and registered by the extension', () => {
    const contributed = PACKAGE.contributes.commands;
    assert.deepEqual(contributed.map((c) => c.command).sort(), Object.values(COMMANDS).sort());
    for (const c of contributed) assert.equal(c.category, 'fimls', c.command);
    assert.equal(contributed.find((c) => c.command === 'fimls.rewriteSelection').title, 'Rewrite selection…');
    const compiled = fs.readFileSync(path.join(ROOT, 'out/extension.js'), 'utf8');
    for (const key of Object.keys(COMMANDS)) {
      assert.match(compiled, new RegExp(`registerCommand\\(protocol_1\\.COMMANDS\\.${key},`), `registers ${key}`);
    }
  });

  test('configuration: every setting has a type, a valid default and a description', () => {
    for (const [key, schema] of Object.entries(PROPERTIES)) {
      assert.match(key, /^fimls\.[a-zA-Z]+(\.[a-zA-Z]+)*$/, key);
      assert.ok(schema.type, `${key} has a type`);
      assert.ok('default' in schema, `${key} has a default`);
      assert.deepEqual(schemaProblems(schema.default, schema, key), []);
      assert.ok((schema.markdownDescription ?? schema.description ?? '').length > 10, `${key} is described`);
    }
    assert.equal(PROPERTIES['fimls.server.command'].default, 'fimls');
    assert.deepEqual(PROPERTIES['fimls.server.args'].default, ['--stdio']);
    assert.deepEqual(PROPERTIES['fimls.server.env'].default, {});
    assert.equal(PROPERTIES['fimls.trace.server'].default, 'off');
    for (const key of ['fimls.server.command', 'fimls.server.args', 'fimls.server.env']) {
      assert.equal(PROPERTIES[key].scope, 'machine', `${key} cannot be set by a workspace`);
    }
  });

  test("configuration: the server's settings, as in its README table, with the same defaults", () => {
    const table = serverSettingsTable();
    assert.ok(Object.keys(table).length >= 30, 'the table was read');
    const declared = Object.keys(PROPERTIES).filter((k) => !isClientKey(k));
    assert.deepEqual(declared.sort(), Object.keys(table).sort());
    for (const [key, value] of Object.entries(table)) assert.deepEqual(PROPERTIES[key].default, value, key);
  });

  test('plain modules do not import vscode (only extension.js does)', () => {
    for (const file of fs.readdirSync(path.join(ROOT, 'out')).filter((f) => f.endsWith('.js'))) {
      const text = fs.readFileSync(path.join(ROOT, 'out', file), 'utf8');
      assert.equal(/require\("vscode"\)/.test(text), file === 'extension.js', file);
    }
  });
});

describe('README settings block', () => {
  const settings = readmeSettings();

  test('every key is declared in package.json and its value is valid', () => {
    assert.ok(Object.keys(settings).length >= 3);
    for (const [key, value] of Object.entries(settings)) {
      assert.ok(PROPERTIES[key], `${key} is declared in contributes.configuration`);
      assert.deepEqual(schemaProblems(value, PROPERTIES[key], key), []);
    }
    assert.equal(settings['fimls.server.command'], PLACEHOLDER_SERVER);
  });

  test('maps to a launch command and server settings without the client keys', () => {
    const section = nest(effectiveFlat(settings));
    const { launch, problems } = launchSettings(section, home);
    assert.deepEqual(problems, []);
    assert.equal(launch.command, path.join(home, 'fimls/.venv/bin/fimls'));
    assert.deepEqual(launch.args, ['--stdio']);
    const server = serverSettings(section);
    assert.equal(server.server, undefined);
    assert.equal(server.trace, undefined);
    assert.equal(server.completion.maxLines, settings['fimls.completion.maxLines']);
    assert.equal(server.logLevel, settings['fimls.logLevel']);
    assert.equal(server.model.path, null);
    // Every declared server setting is sent, with its default where the user set none.
    const count = (o) => Object.values(o).reduce((n, v) => n + (v && typeof v === 'object' ? count(v) : 1), 0);
    assert.equal(count(server), Object.keys(PROPERTIES).filter((k) => !isClientKey(k)).length);
  });
});
