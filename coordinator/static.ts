import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';
import { loadedModelModules } from '../runtime/node/model-modules.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BROWSER_ENTRIES = {
  page: 'browser-worker/page.ts',
  'training.worker': 'browser-worker/training.worker.ts',
  // Its import of uPlot's stylesheet comes out as dashboard.css.
  dashboard: 'dashboard/dashboard.ts',
} as const;
const CONTENT_TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', map: 'application/json' };
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

let bundles: Promise<Map<string, Uint8Array>> | undefined;

/**
 * The browser worker, bundled with esbuild on first request and kept in
 * memory: the same shared/ code the Node worker runs, so there is no build
 * step to forget and no stale copy to serve.
 */
export function browserBundles(): Promise<Map<string, Uint8Array>> {
  bundles ??= (async () => {
    const esbuild = await import('esbuild');
    const result = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: BROWSER_ENTRIES,
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      sourcemap: 'linked',
      write: false,
      outdir: '/static/browser',
      logLevel: 'silent',
      plugins: [withModelModules(loadedModelModules())],
    });
    return new Map(result.outputFiles.map((file) => [file.path.slice(file.path.lastIndexOf('/') + 1), file.contents]));
  })();
  bundles.catch(() => (bundles = undefined));
  return bundles;
}

/**
 * Users' model modules (--model-module) in the training worker's bundle: its
 * source gets one import and one registerModel per module, so a tab knows the
 * families the coordinator loaded. No module, no change.
 */
function withModelModules(modules: readonly string[]): import('esbuild').Plugin {
  return {
    name: 'tessera-model-modules',
    setup(build) {
      if (modules.length === 0) return;
      build.onLoad({ filter: /browser-worker[\\/]training\.worker\.ts$/ }, async (args) => {
        const imports = modules.map((module, i) => `import * as __tesseraModel${i} from ${JSON.stringify(module)};`).join('\n');
        const registrations = modules.map((_, i) => `__tesseraRegisterModel(__tesseraModel${i}.default ?? __tesseraModel${i}.spec);`).join('\n');
        const header = `${imports}\nimport { registerModel as __tesseraRegisterModel } from '../shared/models/registry.ts';\n${registrations}\n`;
        return { contents: header + (await readFile(args.path, 'utf8')), loader: 'ts', resolveDir: dirname(args.path) };
      });
    },
  };
}

const wasmDir = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));

/** The join page, the dashboard, their bundles, and tfjs's wasm binaries. */
export function addStaticRoutes(app: Hono): void {
  const joinPage = async () => readFile(join(ROOT, 'browser-worker', 'join.html'), 'utf8');
  const dashboardPage = async () => readFile(join(ROOT, 'dashboard', 'dashboard.html'), 'utf8');
  app.get('/favicon.ico', (c) => c.body(null, 204));
  // The address people type first; the query goes along (the dashboard reads ?token= from it).
  app.get('/', (c) => c.redirect(`/dashboard${new URL(c.req.url).search}`));
  app.get('/join', async (c) => c.html(await joinPage()));
  app.get('/join/:jobId', async (c) => c.html(await joinPage()));
  app.get('/dashboard', async (c) => c.html(await dashboardPage()));
  app.get('/dashboard/:jobId', async (c) => c.html(await dashboardPage()));
  app.get('/static/browser/:file', async (c) => {
    const file = (await browserBundles()).get(c.req.param('file'));
    if (!file) return c.notFound();
    const type = CONTENT_TYPES[c.req.param('file').slice(c.req.param('file').lastIndexOf('.') + 1)] ?? CONTENT_TYPES.js;
    return c.body(file as Uint8Array<ArrayBuffer>, 200, { 'content-type': type, 'cache-control': 'no-cache' });
  });
  app.get('/static/wasm/:file', async (c) => {
    const name = c.req.param('file');
    if (!WASM_FILES.includes(name)) return c.notFound();
    return c.body(await readFile(join(wasmDir, name)), 200, { 'content-type': 'application/wasm', 'cache-control': 'public, max-age=86400' });
  });
}
