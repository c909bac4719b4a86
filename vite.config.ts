// Builds the browser editor (editor/ → editor/dist) and serves it in development with /api and /ws proxied to a
// running `loragraph serve` (default http://127.0.0.1:8188, or $LORAGRAPH_URL).
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const server = process.env.LORAGRAPH_URL ?? 'http://127.0.0.1:8188';

export default defineConfig({
  root: fileURLToPath(new URL('./editor', import.meta.url)),
  base: './',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // litegraph alone is ~600 kB; one chunk keeps first load to a single request on a local server.
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      // litegraph's number prompt evaluates typed expressions with eval; that is its feature, not ours.
      onwarn(warning, warn) {
        if (warning.code === 'EVAL' && /litegraph/.test(warning.id ?? '')) return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: {
      '/api': { target: server, changeOrigin: false },
      '/ws': { target: server.replace(/^http/, 'ws'), ws: true },
    },
  },
});
