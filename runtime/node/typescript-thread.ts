import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * A worker_thread whose entry is a TypeScript module. Node does not carry
 * tsx's loader into worker threads: a small ES module (a data: URL, so there
 * is no .mjs file to keep beside the sources) registers it there, then
 * imports the entry.
 */
export function startTypeScriptThread(entry: URL, options: WorkerOptions = {}): Worker {
  const tsx = import.meta.resolve('tsx/esm/api');
  const source = `const { register } = await import(${JSON.stringify(tsx)});\nregister();\nawait import(${JSON.stringify(entry.href)});\n`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`), options);
}
