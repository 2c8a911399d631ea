import { resolve } from 'node:path';
import { defineConfig, externalizeDepsPlugin } from 'electron-vite';
import vue from '@vitejs/plugin-vue';

const root = import.meta.dirname;

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
