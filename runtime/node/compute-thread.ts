import type { Worker } from 'node:worker_threads';
import type { NamedArrays } from '../../shared/codec/types.ts';
import type { DataShape } from '../../shared/models/types.ts';
import { ErrorCode, isTesseraError, TesseraError } from '../../shared/protocol/errors.ts';
import type { BackendChoice } from '../../shared/tfjs/backends.ts';
import type { ModelRef, StepCompute, StepRequest, StepResult } from '../../shared/worker/compute.ts';
import { startTypeScriptThread } from './typescript-thread.ts';

/**
 * A Node worker's compute in a worker_thread: the tfjs backend, the trainer
 * and every step live there, so the worker's own thread keeps its protocol
 * going during a step (heartbeats, acknowledgements, weight fetches). A step
 * longer than the coordinator's silence limit no longer gets the worker
 * dropped. Weights go to the thread copied once, and only when the thread
 * does not hold them loaded already; gradients come back transferred, not copied.
 */

/** What the thread is started with (its workerData). */
export interface ThreadInit {
  /** A tfjs backend to force (`--backend`); else the fastest measured there. */
  backend?: string;
  /** Threads of the wasm backend (`--threads`). */
  wasmThreads?: number;
  /** Users' model families to register in the thread (`--model-module`), as the worker's own thread did. */
  modelModules: readonly string[];
}

/** The backend the thread chose, and the device it runs on: what the worker reports in its hello. */
export type ThreadBackend = BackendChoice & { device: string };

/** An error as it crosses the thread boundary: a TesseraError keeps its code and field. */
export interface WireError {
  message: string;
  code?: ErrorCode;
  field?: string;
}

export type ThreadRequest =
  | { type: 'shapes'; id: number; model: ModelRef; data: DataShape }
  /** `weights` left out: the thread holds them loaded (its last reply said so). */
  | { type: 'step'; id: number; request: Omit<StepRequest, 'weights'> & { weights?: NamedArrays } };

export type ThreadReply =
  | { type: 'ready'; backend: ThreadBackend }
  | { type: 'failed'; error: WireError }
  | { type: 'shapes'; id: number; shapes: Record<string, number[]>; weightsHash: string }
  | { type: 'step'; id: number; result: StepResult; weightsHash: string }
  | { type: 'error'; id: number; error: WireError; weightsHash: string };

export function toWireError(error: unknown): WireError {
  if (!isTesseraError(error)) return { message: error instanceof Error ? error.message : String(error) };
  // The message without the field (TesseraError's constructor appends it, and appends it again when rebuilt).
  return { message: error.detail, code: error.code, field: error.field };
}

/** The error the thread threw, of the same kind: a TesseraError with its code and field, or a plain Error. */
export function fromWireError(wire: WireError): Error {
  return wire.code === undefined ? new Error(wire.message) : new TesseraError(wire.code, wire.message, { field: wire.field });
}

/** The typed arrays' buffers, each once (several views may share one): transferred, not copied. */
export function buffersOf(arrays: NamedArrays): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const array of Object.values(arrays)) if (array.buffer instanceof ArrayBuffer) buffers.add(array.buffer);
  return [...buffers];
}

export interface ComputeThreadOptions {
  backend?: string;
  wasmThreads?: number;
  modelModules?: readonly string[];
  /** Told when the thread ends without being asked to (an uncaught error, out of memory). */
  onExit?(error: TesseraError): void;
}

/** Starts the compute thread and waits until it has chosen its backend; rejects with the thread's error when it cannot start. */
export async function startComputeThread(options: ComputeThreadOptions = {}): Promise<ThreadCompute> {
  const init: ThreadInit = { backend: options.backend, wasmThreads: options.wasmThreads, modelModules: options.modelModules ?? [] };
  const worker = startTypeScriptThread(new URL('./compute-thread-entry.ts', import.meta.url), { workerData: init });
  const backend = await new Promise<ThreadBackend>((resolve, reject) => {
    // Only these listeners go: Node keeps listeners of its own on a Worker (removeAllListeners would stop its messages).
    const stopListening = () => worker.off('error', fail).off('exit', onExit).off('message', onMessage);
    const fail = (error: Error) => {
      stopListening();
      void worker.terminate();
      reject(error);
    };
    const onExit = (code: number) => fail(new Error(`the compute thread exited with code ${code} while starting`));
    const onMessage = (reply: ThreadReply) => {
      if (reply.type !== 'ready')
        return fail(reply.type === 'failed' ? fromWireError(reply.error) : new Error(`the compute thread answered ${reply.type} while starting`));
      stopListening();
      resolve(reply.backend);
    };
    worker.on('error', fail).on('exit', onExit).on('message', onMessage);
  });
  return new ThreadCompute(worker, backend, options.onExit);
}

/** The worker's side of the thread: one call at a time, in order, each answered by id. */
export class ThreadCompute implements StepCompute {
  private readonly pending = new Map<number, { resolve(reply: ThreadReply): void; reject(error: Error): void }>();
  private nextId = 1;
  /** The weights hash the thread holds loaded, from its last reply: a step at that hash goes without weights. */
  private threadWeightsHash = '';
  private lastShapes: { key: string; shapes: Record<string, number[]> } | undefined;
  private calls: Promise<unknown> = Promise.resolve();
  private ended: TesseraError | undefined;

  constructor(
    private readonly worker: Worker,
    /** The backend the thread computes on. */
    readonly backend: ThreadBackend,
    onExit?: (error: TesseraError) => void,
  ) {
    worker.on('message', (reply: ThreadReply) => {
      if (!('id' in reply)) return;
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      this.threadWeightsHash = reply.weightsHash;
      waiter?.resolve(reply);
    });
    let thrown: Error | undefined;
    worker.on('error', (error) => (thrown = error));
    worker.on('exit', (code) => {
      if (this.ended) return;
      this.end(new TesseraError(ErrorCode.Internal, `the compute thread exited (code ${code}${thrown ? `: ${thrown.message}` : ''})`, { cause: thrown }));
      onExit?.(this.ended!);
    });
  }

  async shapes(model: ModelRef, data: DataShape): Promise<Record<string, number[]>> {
    const key = JSON.stringify([model, data.imageShape, data.classes]);
    if (this.lastShapes?.key === key) return this.lastShapes.shapes;
    const reply = await this.call((id) => ({ type: 'shapes', id, model, data }));
    if (reply.type !== 'shapes') throw new Error(`the compute thread answered ${reply.type} to shapes`);
    this.lastShapes = { key, shapes: reply.shapes };
    return reply.shapes;
  }

  async step(request: StepRequest): Promise<StepResult> {
    const reply = await this.call((id) => {
      // Decided when the call is made, after every earlier reply: the thread's loaded weights are known then.
      const { weights, ...rest } = request;
      return { type: 'step', id, request: this.threadWeightsHash === request.weightsHash ? rest : { ...rest, weights } };
    });
    if (reply.type !== 'step') throw new Error(`the compute thread answered ${reply.type} to a step`);
    return reply.result;
  }

  /** Ends the thread; a call still waiting is refused. */
  dispose(): void {
    if (this.ended) return;
    this.end(new TesseraError(ErrorCode.Internal, 'the compute thread was stopped'));
    void this.worker.terminate();
  }

  private end(error: TesseraError): void {
    this.ended = error;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  /** Sends one request after the previous call has its answer, and waits for its own. */
  private call(build: (id: number) => ThreadRequest): Promise<ThreadReply> {
    const result = this.calls.then(
      () =>
        new Promise<ThreadReply>((resolve, reject) => {
          if (this.ended) throw this.ended;
          const request = build(this.nextId++);
          this.pending.set(request.id, { resolve, reject });
          // Weights are copied (the worker's cache keeps its own); nothing else is large.
          this.worker.postMessage(request);
        }),
    );
    this.calls = result.catch(() => undefined);
    return result.then((reply) => {
      if (reply.type === 'error') throw fromWireError(reply.error);
      return reply;
    });
  }
}
