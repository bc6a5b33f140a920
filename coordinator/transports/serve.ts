import type { CoordinatorTransport } from '../../shared/transport/coordinator.ts';
import type { Hub } from '../hub.ts';
import type { JobRunner } from '../job/runner.ts';

/**
 * Starts every transport with the hub as its handler and has each serve
 * every job, those there now and those added later. Each new weights version
 * goes out on the transports that broadcast (NATS: encoded and published
 * once, whatever the number of workers); over the others workers fetch it by
 * hash. A transport that fails to start (NATS unreachable) closes the ones
 * started before it, and the failure is thrown.
 */
export async function serveTransports(hub: Hub, transports: readonly CoordinatorTransport[]): Promise<{ close(): Promise<void> }> {
  const started: CoordinatorTransport[] = [];
  try {
    for (const transport of transports) {
      await transport.start(hub);
      started.push(transport);
    }
  } catch (error) {
    await Promise.all(started.map((transport) => transport.close()));
    throw error;
  }
  let closed = false;
  const serveJob = (runner: JobRunner) => {
    const jobId = runner.job.config.id;
    for (const transport of transports) transport.addJob(jobId);
    runner.on('published', (weights) => {
      if (closed) return;
      for (const transport of transports) {
        if (transport.broadcast(jobId, weights.message)) hub.emit('bytesOut', jobId, weights.bytes.byteLength, 'weights-broadcast', transport.name);
      }
    });
  };
  for (const runner of hub.runners.values()) serveJob(runner);
  hub.on('jobAdded', serveJob);
  return {
    async close() {
      closed = true;
      hub.off('jobAdded', serveJob);
      await Promise.all(transports.map((transport) => transport.close()));
    },
  };
}
