/**
 * The desktop shell: one hardened window, the core forked into a utility
 * process, and a MessagePort from each window straight to the core. The main
 * process itself runs no broker code and never touches SQLite.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, MessageChannelMain, safeStorage, session, shell, utilityProcess, type UtilityProcess } from 'electron';

const here = dirname(fileURLToPath(import.meta.url));
let core: UtilityProcess | null = null;
let coreReady: Promise<void> | null = null;

/**
 * The data key that seals saved connections, kept encrypted by the OS keychain
 * through safeStorage and handed to the core process at start-up. Where no
 * keychain is available the core falls back to its owner-only key file.
 */
function secretKeyEnv(): Record<string, string> {
  if (!safeStorage.isEncryptionAvailable()) return {};
  const file = join(app.getPath('userData'), 'secret.key.enc');
  if (!existsSync(file)) writeFileSync(file, safeStorage.encryptString(randomBytes(32).toString('base64')), { mode: 0o600 });
  return { BROKERDECK_SECRET_KEY: safeStorage.decryptString(readFileSync(file)) };
}

function startCoreProcess(): Promise<void> {
  core = utilityProcess.fork(join(here, 'core-process.js'), [], {
    serviceName: 'Brokerdeck core',
    stdio: 'inherit',
    env: {
      ...process.env,
      BROKERDECK_DATA_DIR: app.getPath('userData'),
      BROKERDECK_VERSION: app.getVersion(),
      ...secretKeyEnv(),
      // The Electron build of better-sqlite3 (see README: "Native module").
      BROKERDECK_SQLITE_BINDING: process.env.BROKERDECK_SQLITE_BINDING ?? join(here, '..', 'native', 'electron', 'better_sqlite3.node'),
    },
  });
  core.on('exit', (code) => {
    if (!quitting) {
      console.error(`the core process exited with code ${code}; restarting it`);
      coreReady = startCoreProcess();
      for (const win of BrowserWindow.getAllWindows()) void coreReady.then(() => connectWindow(win));
    }
  });
  return new Promise((resolve) => {
    core!.on('message', (m: { type?: string }) => {
      if (m?.type === 'ready') resolve();
    });
  });
}

function connectWindow(win: BrowserWindow) {
  if (!core) return;
  const { port1, port2 } = new MessageChannelMain();
  core.postMessage({ type: 'connect' }, [port1]);
  win.webContents.postMessage('brokerdeck:port', null, [port2]);
}

function createWindow() {
  const win = new BrowserWindow({
    width: 1400,
    height: 900,
    title: 'Brokerdeck',
    show: false,
    webPreferences: {
      preload: join(here, '..', 'preload', 'index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  // The app never navigates away from its own page and never opens windows.
  win.webContents.on('will-navigate', (event) => event.preventDefault());
  win.webContents.on('will-redirect', (event) => event.preventDefault());
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.webContents.on('did-finish-load', () => void coreReady?.then(() => connectWindow(win)));
  const devUrl = process.env.ELECTRON_RENDERER_URL;
  if (devUrl && !app.isPackaged) void win.loadURL(devUrl);
  else void win.loadFile(join(here, '..', 'renderer', 'index.html'));
}

let quitting = false;

app.enableSandbox();
app.on('web-contents-created', (_event, contents) => {
  contents.on('will-attach-webview', (event) => event.preventDefault());
});

void app.whenReady().then(() => {
  // No page of ours needs a camera, notifications or any other permission.
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  coreReady = startCoreProcess();
  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});

app.on('before-quit', (event) => {
  if (quitting || !core) return;
  quitting = true;
  event.preventDefault();
  const proc = core;
  const timer = setTimeout(() => app.exit(0), 5000);
  proc.once('exit', () => {
    clearTimeout(timer);
    app.exit(0);
  });
  proc.postMessage({ type: 'shutdown' });
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});
