// A node:test reporter that prints, after the run, each test file's time (the sum of its
// top-level tests, which run one after another within a file), slowest first: so the slow
// files are visible in CI's log; then one closing line, `tests: N passed, N failed, N skipped`. Used beside the spec reporter by test/run.js.
import { relative } from 'node:path';

export default async function* fileTimes(source) {
  const ms = new Map();
  const count = { passed: 0, failed: 0, skipped: 0 };
  for await (const event of source) {
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.details?.type !== 'suite') {
      if (event.data.skip || event.data.todo) count.skipped++;
      else if (event.type === 'test:pass') count.passed++;
      else count.failed++;
    }
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0 && event.data.file) {
      const file = relative(process.cwd(), event.data.file);
      ms.set(file, (ms.get(file) ?? 0) + (event.data.details?.duration_ms ?? 0));
    }
  }
  const rows = [...ms].sort((a, b) => b[1] - a[1]);
  yield '\ntime per test file (slowest first):\n';
  for (const [file, t] of rows) yield `  ${(t / 1000).toFixed(1).padStart(7)} s  ${file}\n`;
  // The plain closing line, after the spec reporter's summary.
  yield `\ntests: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`;
}
