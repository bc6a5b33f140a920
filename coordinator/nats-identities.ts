import { nkeys } from 'nats';

/**
 * The pool of worker identities on NATS (deploy/nats-users.ts makes them):
 * the coordinator holds their seeds and lends one to each worker process that
 * asks with the worker token, so identical replicas each get their own
 * identity, and the NATS server lets each publish only as itself.
 *
 * An identity is in use while a connection of that id is live, and for
 * IDLE_MS after it was last seen (the coordinator looks every OBSERVE_MS) or
 * lent: a worker whose NATS link drops reconnects with the seed it holds, and
 * must not find it lent to another.
 */

/** How often the coordinator tells the pool which identities are connected. */
export const OBSERVE_MS = 30_000;

/** Longer than a NATS outage a worker rides out by reconnecting, and than its silence timeout. */
export const IDLE_MS = 10 * 60_000;

export interface NatsIdentity {
  /** The nkey seed (secret): the worker authenticates with it. */
  seed: string;
  /** Its public key: the worker's connection id in its subjects. */
  connectionId: string;
}

/** Lends worker identities out of a fixed pool of seeds. */
export class NatsIdentityPool {
  private readonly identities: NatsIdentity[];
  /** When each identity was last lent or seen connected, by connection id. */
  private readonly lastUsed = new Map<string, number>();

  constructor(seeds: readonly string[]) {
    this.identities = seeds.map((seed) => ({ seed, connectionId: nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey() }));
  }

  get size(): number {
    return this.identities.length;
  }

  /** Notes the identities connected now. */
  observe(live: Iterable<string>, now = Date.now()): void {
    for (const id of live) this.lastUsed.set(id, now);
  }

  /**
   * Lends an identity no live connection uses and none has used for IDLE_MS
   * (the longest unused first); undefined when every one is taken.
   */
  lend(live: Iterable<string>, now = Date.now()): NatsIdentity | undefined {
    this.observe(live, now);
    let chosen: NatsIdentity | undefined;
    for (const identity of this.identities) {
      const used = this.lastUsed.get(identity.connectionId);
      if (used !== undefined && now - used < IDLE_MS) continue;
      if (!chosen || (used ?? -Infinity) < (this.lastUsed.get(chosen.connectionId) ?? -Infinity)) chosen = identity;
    }
    if (chosen) this.lastUsed.set(chosen.connectionId, now);
    return chosen;
  }
}

/** Reads nkey seeds (SU…): one per line (a file) or separated by commas (an environment variable); # comment lines skipped. */
export function parseSeeds(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(/[\s,]+/))
    .filter((seed) => seed !== '');
}
