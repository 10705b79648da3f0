'use strict';
/**
 * The README's settings.json block and package.json's configuration, as VS Code would
 * combine them: declared defaults, overridden by the user's settings.
 */

const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const PROPERTIES = PACKAGE.contributes.configuration.properties;

/** What the README tells users to adapt: the checkout's server. */
const PLACEHOLDER_SERVER = '~/fimls/.venv/bin/fimls';

/** The fenced block right after `<!-- test:config -->` in a Markdown file. */
function markedBlock(markdownPath, marker = '<!-- test:config -->') {
  const text = fs.readFileSync(markdownPath, 'utf8');
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`no ${marker} in ${markdownPath}`);
  const match = /^```[^\n]*\n([\s\S]*?)^```/m.exec(text.slice(at + marker.length));
  if (!match) throw new Error(`no fenced block after ${marker} in ${markdownPath}`);
  const between = text.slice(at + marker.length, at + marker.length + match.index);
  if (between.trim() !== '') throw new Error(`text between ${marker} and its block: ${JSON.stringify(between)}`);
  return match[1];
}

/** The README's settings.json lines, parsed. */
function readmeSettings() {
  return JSON.parse(markedBlock(path.join(ROOT, 'README.md')));
}

/** Problems of `value` against a package.json configuration property schema ([] if valid). */
function schemaProblems(value, schema, where = 'value') {
  const problems = [];
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const typeOf = (v) =>
    v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v;
  const actual = typeOf(value);
  const ok = types.some((t) => t === actual || (t === 'number' && actual === 'integer'));
  if (!ok) {
    problems.push(`${where}: ${JSON.stringify(value)} is ${actual}, not ${types.join(' or ')}`);
    return problems;
  }
  if (schema.enum && !schema.enum.includes(value)) problems.push(`${where}: ${JSON.stringify(value)} not in ${schema.enum}`);
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) problems.push(`${where}: ${value} < ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) problems.push(`${where}: ${value} > ${schema.maximum}`);
  }
  if (actual === 'array' && schema.items) {
    value.forEach((v, i) => problems.push(...schemaProblems(v, schema.items, `${where}[${i}]`)));
  }
  if (actual === 'object' && schema.additionalProperties) {
    for (const [k, v] of Object.entries(value)) problems.push(...schemaProblems(v, schema.additionalProperties, `${where}.${k}`));
  }
  return problems;
}

/**
 * The user's settings as the README gives them, with the server under test in place of
 * the placeholder checkout.
 */
function readmeSettingsFor(serverCommand) {
  const settings = readmeSettings();
  for (const [key, value] of Object.entries(settings)) {
    if (typeof value === 'string' && value.includes(PLACEHOLDER_SERVER)) {
      settings[key] = value.replace(PLACEHOLDER_SERVER, serverCommand);
    }
  }
  return settings;
}

/** Every declared default, overridden by `userSettings` (flat, dotted keys). */
function effectiveFlat(userSettings) {
  const flat = {};
  for (const [key, schema] of Object.entries(PROPERTIES)) flat[key] = schema.default;
  return { ...flat, ...userSettings };
}

module.exports = {
  ROOT,
  PACKAGE,
  PROPERTIES,
  PLACEHOLDER_SERVER,
  markedBlock,
  readmeSettings,
  readmeSettingsFor,
  schemaProblems,
  effectiveFlat,
  home: os.homedir(),
};
