import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { defineConfig, externalizeDepsPlugin } from 'electron-vite';
import vue from '@vitejs/plugin-vue';

const root = import.meta.dirname;

// electron-vite takes its build targets (Electron's Node and Chrome versions) from the
// installed Electron. Electron is an optional dependency: where its binary cannot be
// downloaded, npm leaves it out, and the major version package.json asks for gives the
// same targets, so the bundles (and headless mode) still build.
try {
  createRequire(resolve(root, 'package.json')).resolve('electron/package.json');
} catch {
  const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { optionalDependencies: { electron: string } };
  process.env.ELECTRON_MAJOR_VER ??= /\d+/.exec(pkg.optionalDependencies.electron)![0];
}

/**
 * Three bundles. `main` holds the Electron shell, the core's utility-process
 * entry and the headless server entry (the last two never load Electron);
 * `preload` is CommonJS because sandboxed preloads cannot be modules;
 * `renderer` is the Vue app, served by Electron from file:// or by headless mode over HTTP.
 */
export default defineConfig({
  main: {
    plugins: [externalizeDepsPlugin()],
    build: {
      outDir: 'out/main',
      rollupOptions: {
        input: {
          index: resolve(root, 'src-main/app/main.ts'),
          'core-process': resolve(root, 'src-main/transports/ipc/core-process.ts'),
          serve: resolve(root, 'src-main/transports/http/serve.ts'),
        },
        output: { format: 'es', entryFileNames: '[name].js' },
      },
    },
  },
  preload: {
    plugins: [externalizeDepsPlugin({ exclude: ['zod'] })],
    build: {
      outDir: 'out/preload',
      rollupOptions: {
        input: { index: resolve(root, 'src-main/preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve(root, 'src-renderer'),
    plugins: [vue()],
    resolve: { alias: { '@contract': resolve(root, 'src-main/contract') } },
    build: {
      outDir: resolve(root, 'out/renderer'),
      // Smaller bundles parse sooner: start-up with 5,000 queues is measured in milliseconds.
      minify: 'esbuild',
      rollupOptions: { input: { index: resolve(root, 'src-renderer/index.html') } },
    },
  },
});
