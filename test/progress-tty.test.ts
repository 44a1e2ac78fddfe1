/**
 * What a build shows on a real terminal, and in a pipe. `script` (util-linux, scripts/setup.sh)
 * runs `imgmake build` on a pseudo-terminal whose size it cannot learn (its own stdin is not a
 * terminal): 0 columns, the case that used to cut "278 ms" to "278 m". The screen it captures
 * must show the [N/M] counter, the running stage's latest output line and the final summary,
 * in colour unless NO_COLOR is set; the same build piped shows plain lines and no escape codes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { bin, imgmake, projectWith } from './helpers/cli.js';

const DEFINITION = `version: 1
pipelines:
  demo:
    stages:
      - name: slow
        rule: shell.run
        options:
          script: |
            echo "Reading package lists..."
            sleep 1
            echo "Unpacking demo-package (1.0) ..."
            sleep 2
            echo "Setting up demo-package (1.0) ..."
            mkdir -p etc && echo done > etc/demo
      - name: note
        rule: files.write
        options:
          files:
            - { path: /etc/note, content: "hi" }
targets:
  demo:
    pipeline: demo
`;

/** Runs imgmake on a pseudo-terminal; resolves with its exit code and everything it wrote there. */
function onTerminal(args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number | null; screen: string }> {
  const quoted = [process.execPath, bin, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const { CI: _ci, NO_COLOR: _nc, ...rest } = process.env;
  const child = spawn('script', ['-qfec', quoted, '/dev/null'], { cwd, env: { ...rest, TERM: 'xterm', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let screen = '';
  child.stdout.on('data', (d) => (screen += d));
  child.stderr.on('data', (d) => (screen += d));
  return new Promise((done, reject) => {
    child.on('error', reject);
    child.on('close', (code) => done({ code, screen }));
  });
}

const ESCAPES = /\x1b\[[0-9;?]*[A-Za-z]/g;
const COLOUR = /\x1b\[(1|2|3[0-7])m/;

test('a build on a terminal shows [N/M], the running stage’s latest line and the summary; piped, plain lines', async () => {
  const p = await projectWith(DEFINITION);
  try {
    const tty = await onTerminal(['build'], p.dir);
    assert.equal(tty.code, 0, tty.screen);
    const shown = tty.screen.replace(ESCAPES, '');
    assert.match(shown, /\[1\/2\] ▸ demo\.slow \(shell\.run\) \d+(\.\d)? (ms|s) · Unpacking demo-package \(1\.0\) \.\.\./, shown);
    assert.match(shown, /\[1\/2\] ran {4}demo\.slow \(shell\.run\) \d+\.\d s/);
    assert.match(shown, /\[2\/2\] ran {4}demo\.note \(files\.write\)/);
    assert.match(shown, /ok: ran 2, cached 0, failed 0 in \d+(\.\d)? (ms|s)\r?\n/);
    assert.doesNotMatch(shown, /▸ [^\n]* \d+ m(\s|$)/, 'no time cut short on a 0-column terminal');
    assert.match(tty.screen, COLOUR, 'colour on a terminal');

    const noColour = await onTerminal(['build', '--from', 'demo.slow'], p.dir, { NO_COLOR: '1' });
    assert.equal(noColour.code, 0, noColour.screen);
    assert.match(noColour.screen.replace(ESCAPES, ''), /\[1\/2\] ▸ demo\.slow/);
    assert.doesNotMatch(noColour.screen, COLOUR, 'NO_COLOR: none');

    // Piped (CI unset, so only the pipe decides): one plain line per event.
    const piped = await imgmake(['build', '--from', 'demo.slow'], { cwd: p.dir, env: { CI: '' } });
    assert.equal(piped.code, 0, piped.stderr);
    assert.doesNotMatch(piped.stdout, /\x1b/, 'no escape codes in a pipe');
    assert.doesNotMatch(piped.stdout, /▸/);
    assert.match(piped.stdout, /^ {2}ran {4}demo\.slow \(shell\.run\) \d+\.\d s$/m);
    assert.match(piped.stdout, /^ok: ran 2, cached 0, failed 0 in /m);

    // --progress tty asks for the live display even in a pipe (without colour: not a terminal).
    const forced = await imgmake(['--progress', 'tty', 'build', '--from', 'demo.slow'], { cwd: p.dir });
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout.replace(ESCAPES, ''), /\[1\/2\] ▸ demo\.slow/);
    assert.doesNotMatch(forced.stdout, COLOUR);
    // --progress json is --json.
    const json = await imgmake(['--progress', 'json', 'build'], { cwd: p.dir });
    assert.equal(json.code, 0, json.stderr);
    assert.equal(json.events.at(-1)?.type, 'summary');
  } finally {
    await p.cleanup();
  }
});

test('--progress takes auto, tty, plain or json', async () => {
  const r = await imgmake(['--progress', 'fancy', 'plan']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /auto, tty, plain, json/);
});

test('a live stage-output line reaches --json too, throttled: a stage that prints for seconds yields a few, not one per line', async () => {
  const p = await projectWith(DEFINITION.replace('echo "Reading package lists..."', 'for i in $(seq 1 2000); do echo "line $i"; done'));
  try {
    const r = await imgmake(['--json', 'build'], { cwd: p.dir });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.events.filter((e) => e.type === 'stage-output' && e.node === 'demo.slow').map((e) => e.line as string);
    assert.ok(lines.includes('Unpacking demo-package (1.0) ...'), JSON.stringify(lines));
    assert.ok(lines.length <= 12, `throttled: ${lines.length} lines in about 3 s`);
    assert.equal(new Set(lines).size, lines.length, 'only when it changed');
  } finally {
    await p.cleanup();
  }
});
