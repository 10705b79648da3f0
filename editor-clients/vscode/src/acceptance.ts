/**
 * Acceptance counting for inline suggestions, reported to the server with
 * `workspace/executeCommand fimls.accepted`.
 *
 * A whole suggestion accepted with Tab runs the item's command, so VS Code tells us. A
 * partial accept (Ctrl+Right accepts the next word, "Accept Line" the next line) runs no
 * command, and VS Code's stable API has no event for it; it shows only as an edit that
 * inserts the start of the suggestion at the cursor. This tracker watches the document's
 * changes for that: an insertion of two or more characters at the suggestion's current
 * position that equals its next characters counts as accepted; a single character that
 * matches is the user typing on (counted as neither). When the suggestion ends (another one
 * is shown, an edit departs from it, the document closes), what was accepted of it is
 * reported as a partial accept. Pure: no `vscode` import.
 */

/** The argument of the server's `fimls.accepted` command (the item's "receipt"). */
export interface Receipt {
  uri: string;
  /** Length of the suggestion, in Unicode code points (the server's unit). */
  chars: number;
  /** Code points inserted, for a partial accept. */
  accepted?: number;
  [key: string]: unknown;
}

export interface Position {
  line: number;
  character: number;
}

/** One content change of a document (VS Code's TextDocumentContentChangeEvent). */
export interface Change {
  range: { start: Position; end: Position };
  text: string;
}

interface Shown {
  key: string;
  uri: string;
  anchor: Position;
  text: string;
  receipt: Receipt;
  /** UTF-16 offset into `text` where what is still on screen begins. */
  offset: number;
  /** Code points taken by partial accepts. */
  taken: number;
}

/** Insertions shorter than this that match the suggestion are typing, not accepting. */
const MIN_ACCEPTED = 2;
/** How many ended suggestions to remember (their full accept may still arrive). */
const REMEMBERED = 32;

export class AcceptanceTracker {
  private current: Shown | undefined;
  /** Suggestions reported as partially accepted already: key -> code points reported. */
  private readonly reported = new Map<string, number>();
  private counter = 0;

  /**
   * A suggestion is about to be shown. Returns the key the item's command must carry
   * (passed back to `accepted`) and the reports for the suggestion it replaces.
   */
  shown(uri: string, anchor: Position, text: string, receipt: Receipt): { key: string; reports: Receipt[] } {
    const reports = this.end();
    this.counter += 1;
    const key = `s${this.counter}`;
    this.current = { key, uri, anchor, text, receipt, offset: 0, taken: 0 };
    return { key, reports };
  }

  /** The document `uri` changed; returns reports for a suggestion this edit departs from. */
  changed(uri: string, changes: readonly Change[]): Receipt[] {
    const s = this.current;
    if (s === undefined || s.uri !== uri || changes.length === 0) {
      return [];
    }
    if (changes.length === 1) {
      const { range, text } = changes[0];
      const at = advance(s.anchor, s.text.slice(0, s.offset));
      const rest = s.text.slice(s.offset);
      const insertion = samePosition(range.start, range.end) && samePosition(range.start, at);
      if (insertion && text.length > 0 && rest.startsWith(text)) {
        s.offset += text.length;
        // The last character of a suggestion being accepted piece by piece counts too.
        if (text.length >= MIN_ACCEPTED || (s.offset === s.text.length && s.taken > 0)) {
          s.taken += codePoints(text);
        }
        return [];
      }
    }
    return this.end();
  }

  /**
   * The item's command ran: the user accepted the suggestion (or what was left of it).
   * Returns the report to send: the receipt unchanged for a whole accept.
   */
  accepted(receipt: Receipt, key: string | undefined): Receipt[] {
    if (this.current !== undefined && this.current.key === key) {
      this.current = undefined;
      return [receipt];
    }
    const earlier = key === undefined ? undefined : this.reported.get(key);
    if (earlier !== undefined) {
      // Its start was reported as a partial accept already: report the rest the same way.
      this.reported.delete(key as string);
      const rest = receipt.chars - earlier;
      return rest > 0 ? [{ ...receipt, accepted: rest }] : [];
    }
    return [receipt];
  }

  /** The document closed (or, without `uri`, the client stops): report what is pending. */
  closed(uri?: string): Receipt[] {
    if (this.current === undefined || (uri !== undefined && this.current.uri !== uri)) {
      return [];
    }
    return this.end();
  }

  /** End the current suggestion; report what was taken of it. */
  private end(): Receipt[] {
    const s = this.current;
    this.current = undefined;
    if (s === undefined || s.taken === 0) {
      return [];
    }
    // Remembered so that the item's command, should it still run (VS Code may ask for the
    // next suggestion before it runs the command of a whole accept), adds only the rest.
    const taken = Math.min(s.taken, s.receipt.chars);
    this.remember(s.key, taken);
    if (s.offset >= s.text.length && taken === s.receipt.chars) {
      return [s.receipt]; // taken whole
    }
    return [{ ...s.receipt, accepted: taken }];
  }

  private remember(key: string, taken: number): void {
    this.reported.set(key, taken);
    while (this.reported.size > REMEMBERED) {
      const oldest = this.reported.keys().next().value as string;
      this.reported.delete(oldest);
    }
  }
}

/** The position after inserting `text` at `start` (VS Code positions: UTF-16 columns). */
export function advance(start: Position, text: string): Position {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length === 1) {
    return { line: start.line, character: start.character + text.length };
  }
  return { line: start.line + lines.length - 1, character: lines[lines.length - 1].length };
}

/** Unicode code points in `text` (Python's `len`). */
export function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) {
    n += 1;
  }
  return n;
}

function samePosition(a: Position, b: Position): boolean {
  return a.line === b.line && a.character === b.character;
}
