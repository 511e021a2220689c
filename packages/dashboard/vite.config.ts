import { defineConfig } from 'vite';

// A plain Vite build of a small Preact app. Everything ends up in external files under
// dist/assets (no inline scripts or styles), so the server's strict CSP needs no exceptions.
export default defineConfig({
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Keep fonts as files: a data: URL font would need `font-src data:` in the CSP.
    assetsInlineLimit: 0,
    // The module-preload polyfill is injected inline in some setups; modern targets need none.
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: { port: 5173, proxy: { '/v1': 'http://127.0.0.1:8080', '/portal': 'http://127.0.0.1:8080' } },
});
