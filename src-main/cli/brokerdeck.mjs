#!/usr/bin/env node
// The `brokerdeck` command: `serve` (headless, in a browser) and `desktop`
// (the Electron app). Plain JavaScript so it runs before anything is built;
// it builds the bundles first when they are missing or older than the sources.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, copyFileSync, cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(root, 'package.json'));

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function ensureBuilt() {
  const marker = join(root, 'out', 'main', 'serve.js');
  const sources = ['src-main', 'src-renderer'].map((d) => join(root, d)).filter((d) => existsSync(d));
  const stale = !existsSync(marker) || (sources.length > 0 && Math.max(...sources.map(newestMtime)) > statSync(marker).mtimeMs);
  if (!stale) return;
  if (!existsSync(join(root, 'node_modules', '.bin', 'electron-vite'))) {
    console.error('brokerdeck: the build tools are not installed; run `npm install` first.');
    process.exit(1);
  }
  console.log('Building Brokerdeck…');
  const result = spawnSync(join(root, 'node_modules', '.bin', 'electron-vite'), ['build'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

function electronBinary() {
  try {
    const path = require('electron');
    return typeof path === 'string' && existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

/**
 * better-sqlite3 is compiled for Node. The desktop core runs in Electron, so a
 * second copy is built for Electron's ABI into out/native/electron/ (the Node
 * copy stays untouched) and loaded through better-sqlite3's nativeBinding option.
 */
function ensureElectronSqlite(electronVersion) {
  const target = join(root, 'out', 'native', 'electron');
  const marker = join(target, `electron-${electronVersion}`);
  if (existsSync(marker)) return;
  const work = join(root, 'out', 'native', 'build');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const pkgDir = dirname(require.resolve('better-sqlite3/package.json'));
  cpSync(pkgDir, work, { recursive: true, filter: (src) => !src.includes(`${join(pkgDir, 'build')}`) });
  console.log(`Building better-sqlite3 for Electron ${electronVersion}…`);
  const env = { ...process.env, npm_config_runtime: 'electron', npm_config_target: electronVersion, npm_config_disturl: 'https://electronjs.org/headers' };
  let ok = spawnSync(join(root, 'node_modules', '.bin', 'prebuild-install'), ['--runtime', 'electron', '--target', electronVersion], { cwd: work, stdio: 'inherit', env }).status === 0;
  if (!ok) {
    ok = spawnSync('npx', ['--yes', 'node-gyp', 'rebuild', '--release', `--target=${electronVersion}`, '--dist-url=https://electronjs.org/headers'], { cwd: work, stdio: 'inherit', env }).status === 0;
  }
  if (!ok) {
    console.error('brokerdeck: could not build better-sqlite3 for Electron (see above).');
    process.exit(1);
  }
  mkdirSync(target, { recursive: true });
  copyFileSync(join(work, 'build', 'Release', 'better_sqlite3.node'), join(target, 'better_sqlite3.node'));
  copyFileSync(join(work, 'package.json'), marker);
  rmSync(work, { recursive: true, force: true });
}

const [command = 'desktop', ...args] = process.argv.slice(2);

switch (command) {
  case 'serve': {
    ensureBuilt();
    const { runServe } = await import(pathToFileURL(join(root, 'out', 'main', 'serve.js')).href);
    await runServe(args);
    break;
  }
  case 'desktop':
  case 'start': {
    const binary = electronBinary();
    if (!binary) {
      console.error('brokerdeck: the desktop window is unavailable on this machine (Electron could not be installed); run `npm run serve` to use Brokerdeck in a browser.');
      process.exit(1);
    }
    ensureBuilt();
    ensureElectronSqlite(require('electron/package.json').version);
    const child = spawn(binary, [root, ...args], { stdio: 'inherit', env: { ...process.env, BROKERDECK_SQLITE_BINDING: join(root, 'out', 'native', 'electron', 'better_sqlite3.node') } });
    child.on('exit', (code) => process.exit(code ?? 0));
    break;
  }
  case '--help':
  case '-h':
  case 'help':
    console.log('Usage: brokerdeck [desktop]   open the desktop app\n       brokerdeck serve [--port N] [--host H] [--data-dir D] [--token T] [--disk-free-limit SIZE]   run headless, in a browser');
    break;
  default:
    console.error(`brokerdeck: unknown command "${command}"; use "desktop" or "serve".`);
    process.exit(2);
}
