// First-run setup for `npm start` and `npm test` on a fresh clone: installs npm dependencies and the
// Debian packages the project uses when they are missing, then hands over to the real command.
// Only Node built-ins here, because this runs before node_modules exists.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mode = process.argv[2];
const extra = process.argv.slice(3);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function newer(a, b) {
  return existsSync(a) && (!existsSync(b) || statSync(a).mtimeMs > statSync(b).mtimeMs);
}

// npm dependencies: install when missing or when the lockfile changed since the last install.
const marker = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(marker) || newer(join(root, 'package-lock.json'), marker)) {
  console.log('loragraph: installing npm dependencies…');
  if (run('npm', ['ci', '--no-audit', '--no-fund']) !== 0) process.exit(1);
}

// System packages (chromium, ffmpeg, software Vulkan). Tests need them all; `start` needs ffmpeg only
// for video datasets, so a failure there is a warning.
if (process.platform === 'linux' && existsSync('/usr/bin/apt-get')) {
  const st = run('bash', [join(root, 'scripts/install-system-deps.sh')]);
  if (st !== 0 && mode === 'test') process.exit(st);
  if (st !== 0) console.warn('loragraph: some system packages are missing (see above); video datasets need ffmpeg');
}

// The WebGPU EP (Vulkan) wants a writable runtime dir.
if (!process.env.XDG_RUNTIME_DIR) {
  const dir = join(root, '.loragraph', 'xdg-runtime');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}

const bin = (name) => join(root, 'node_modules', '.bin', name);
if (mode === 'test') {
  process.exit(run(bin('vitest'), ['run', ...extra]));
} else if (mode === 'start') {
  process.exit(run(bin('tsx'), ['server/cli.ts', 'start', ...extra]));
} else {
  console.error(`usage: node scripts/bootstrap.mjs start|test`);
  process.exit(2);
}
