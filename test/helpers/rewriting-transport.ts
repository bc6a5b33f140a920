import type { WorkerTransportFactory } from '../../shared/transport/worker.ts';

/**
 * Connections of `factory` whose outgoing messages pass through `rewrite`
 * first: a hostile worker's tampering, or a liar's claims, on top of the real
 * WorkerClient and transport.
 */
export function rewritingTransport(factory: WorkerTransportFactory, rewrite: (bytes: Uint8Array) => Uint8Array): WorkerTransportFactory {
  return (target) => {
    const transport = factory(target);
    return {
      connect: (events) => transport.connect(events),
      send: (bytes) => transport.send(rewrite(bytes)),
      close: (reason) => transport.close(reason),
    };
  };
}
