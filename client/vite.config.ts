import { defineConfig } from 'vite';

// Preact through the automatic JSX runtime (tsconfig's jsxImportSource); the page talks to the
// server on the same origin, so the dev server proxies the API and socket.io.
export default defineConfig({
  root: import.meta.dirname,
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: { proxy: { '/api': 'http://127.0.0.1:7860', '/socket.io': { target: 'ws://127.0.0.1:7860', ws: true } } },
});
