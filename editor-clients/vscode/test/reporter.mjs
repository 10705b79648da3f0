// A node:test reporter that prints one line per test ("ok" or "FAIL", with the error for a
// failure) and ends with "vscode: N passed, M failed". Checks made before the tests (the
// build steps of test/run) are added from FIMLS_VSCODE_PASSED / FIMLS_VSCODE_FAILED; the
// counts are also written to the file named by FIMLS_VSCODE_COUNTS.
import { writeFileSync } from 'node:fs';

function indent(text) {
  return String(text)
    .split('\n')
    .map((line) => `       ${line}`)
    .join('\n');
}

function errorText(error) {
  // node:test wraps the thrown error: the original is its cause.
  const cause = error?.cause ?? error;
  if (cause instanceof Error) return cause.stack ?? cause.message;
  return String(cause ?? error);
}

export default async function* reporter(source) {
  let passed = Number(process.env.FIMLS_VSCODE_PASSED ?? 0);
  let failed = Number(process.env.FIMLS_VSCODE_FAILED ?? 0);
  for await (const event of source) {
    const data = event.data;
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const seconds = (data.details?.duration_ms ?? 0) / 1000;
    const suite = data.details?.type === 'suite';
    if (event.type === 'test:pass') {
      if (!suite) {
        passed += 1;
        yield `ok   ${data.name} (${seconds.toFixed(1)} s)\n`;
      }
      continue;
    }
    const error = data.details?.error;
    if (suite && error?.failureType === 'subtestsFailed') continue; // its tests were counted
    failed += 1;
    yield `FAIL ${data.name} (${seconds.toFixed(1)} s)\n${indent(errorText(error))}\n`;
  }
  if (process.env.FIMLS_VSCODE_COUNTS) writeFileSync(process.env.FIMLS_VSCODE_COUNTS, `${passed} ${failed}\n`);
  yield `vscode: ${passed} passed, ${failed} failed\n`;
}
