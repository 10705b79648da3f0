'use strict';
/**
 * Applying LSP text edits to a string, as VS Code applies a WorkspaceEdit to a document
 * (a test helper: in VS Code the editor applies the server's edits itself).
 */

/** The offset of an LSP position (UTF-16 columns) in `text`. */
function offsetAt(text, position) {
  let offset = 0;
  for (let line = 0; line < position.line; line++) {
    const next = text.indexOf('\n', offset);
    if (next < 0) return text.length;
    offset = next + 1;
  }
  const lineEnd = text.indexOf('\n', offset);
  const end = lineEnd < 0 ? text.length : lineEnd;
  return Math.min(offset + position.character, end);
}

/** Apply TextEdits (non-overlapping, ranges in the original text) to `text`. */
function applyTextEdits(text, edits) {
  const resolved = edits.map((e, i) => ({
    start: offsetAt(text, e.range.start),
    end: offsetAt(text, e.range.end),
    newText: e.newText,
    i,
  }));
  // From the end, so earlier offsets stay valid; equal starts keep their given order.
  resolved.sort((a, b) => b.start - a.start || b.i - a.i);
  for (let k = 1; k < resolved.length; k++) {
    if (resolved[k].end > resolved[k - 1].start) throw new Error('overlapping text edits');
  }
  let out = text;
  for (const e of resolved) out = out.slice(0, e.start) + e.newText + out.slice(e.end);
  return out;
}

/**
 * Apply a WorkspaceEdit to documents held as `{uri: {text, version}}`. Returns the URIs
 * changed; throws if a versioned edit does not match the document's version.
 */
function applyWorkspaceEdit(docs, edit) {
  const changed = [];
  const editDoc = (uri, edits, version) => {
    const doc = docs[uri];
    if (!doc) throw new Error(`edit for a document that is not open: ${uri}`);
    if (version !== undefined && version !== null && version !== doc.version) {
      throw new Error(`edit for version ${version} of ${uri}, which is at ${doc.version}`);
    }
    doc.text = applyTextEdits(doc.text, edits);
    changed.push(uri);
  };
  for (const change of edit.documentChanges ?? []) {
    if (change.kind === 'create') {
      docs[change.uri] = docs[change.uri] ?? { text: '', version: 0, created: true };
    } else if (change.kind === undefined) {
      editDoc(change.textDocument.uri, change.edits, change.textDocument.version);
    } else {
      throw new Error(`unexpected resource operation ${change.kind}`);
    }
  }
  for (const [uri, edits] of Object.entries(edit.changes ?? {})) editDoc(uri, edits);
  return changed;
}

module.exports = { offsetAt, applyTextEdits, applyWorkspaceEdit };
