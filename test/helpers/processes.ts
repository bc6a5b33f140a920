import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Started {
  child: ChildProcess;
  pid: number;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the first match of `pattern` in the output, or rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

const started = new Set<Started>();

/**
 * Starts a TypeScript entry point of the project under tsx, in its own process group. Workers get one wasm thread
 * each unless `env` says otherwise: tests run several on two cores, as `npm start` sizes its local workers.
 */
export function startScript(script: string, args: string[], env: Record<string, string> = {}): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...process.env, TESSERA_THREADS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const handle: Started = {
    child,
    pid: child.pid!,
    output: () => output,
    exited,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = output.match(pattern);
          if (match) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(match);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} in the output of ${script}:\n${output.slice(-3000)}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
  };
  started.add(handle);
  void exited.then(() => started.delete(handle));
  return handle;
}

/** Sends a signal to the process group of a started process (tsx and node both), by PID. */
export function signal(handle: Started, name: NodeJS.Signals): void {
  try {
    process.kill(-handle.pid, name);
  } catch {
    /* already gone */
  }
}

/** Stops a started process: SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(handle: Started, graceMs = 5_000): Promise<void> {
  signal(handle, 'SIGTERM');
  const timer = setTimeout(() => signal(handle, 'SIGKILL'), graceMs);
  await handle.exited;
  clearTimeout(timer);
}

/** Kills every process still running that these helpers started (for afterAll / afterEach). */
export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((handle) => stop(handle, 2_000)));
}

/** Polls `probe` until `accept` holds, or fails naming what was awaited and the last value seen. */
export async function until<T>(probe: () => Promise<T> | T, accept: (value: T) => boolean, timeoutMs: number, what: string, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (accept(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}
