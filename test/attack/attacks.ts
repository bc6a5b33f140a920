import { getCodec } from '../../shared/codec/index.ts';
import { arraysToTensors, tensorsToArrays } from '../../shared/codec/named.ts';
import type { NamedArrays } from '../../shared/codec/types.ts';
import { globalNorm } from '../../shared/aggregate/norms.ts';

/** A message the hostile worker sends, decoded (the fields its honest client filled in). */
type Message = Record<string, any>;

export interface AttackContext {
  shapes: Record<string, number[]>;
  /** training.maxGradNorm: the door refuses an update whose norm is above it. */
  maxGradNorm: number;
}

/**
 * One hostile behaviour. The hostile worker is the project's own WorkerClient
 * computing honest gradients; `tamper` rewrites what it sends on the way out,
 * so everything but the lie is what a real worker does.
 */
export interface Attack {
  id: string;
  description: string;
  /** Config the attack needs (fake speed needs throughput batching to steer the split). */
  training?: Record<string, unknown>;
  /** A fresh tamper for one run (it may remember what it sent). */
  start(context: AttackContext): (message: Message) => Message;
}

function mapGradient(message: Message, context: AttackContext, change: (grads: NamedArrays) => NamedArrays): Message {
  const codec = getCodec(message.codec);
  const grads = change(structuredClone(tensorsToArrays(codec.decode(message.tensors), context.shapes)));
  return { ...message, tensors: codec.encode(arraysToTensors(grads, context.shapes)).slice() };
}

const scaled = (grads: NamedArrays, factor: number): NamedArrays =>
  Object.fromEntries(Object.entries(grads).map(([name, values]) => [name, values.map((value) => value * factor)]));

const onUpdates = (change: (message: Message) => Message) => (message: Message) => (message.type === 'update' ? change(message) : message);

export const ATTACKS: Attack[] = [
  {
    id: 'sign-flip-x10',
    description: 'sends -10 x its honest gradient',
    start: (context) => onUpdates((message) => mapGradient(message, context, (grads) => scaled(grads, -10))),
  },
  {
    id: 'flip-at-cap',
    description: 'sends its gradient flipped and stretched to just under the norm cap',
    start: (context) =>
      onUpdates((message) => mapGradient(message, context, (grads) => scaled(grads, (-0.999 * context.maxGradNorm) / Math.max(globalNorm(grads), 1e-30)))),
  },
  {
    id: 'constant',
    description: 'sends 1 for every gradient value',
    start: (context) =>
      onUpdates((message) =>
        mapGradient(message, context, (grads) => Object.fromEntries(Object.keys(grads).map((name) => [name, new Float32Array(grads[name].length).fill(1)]))),
      ),
  },
  {
    id: 'fake-speed',
    description: 'claims 1e300 samples/s at hello and 0 ms per update to win the batch split, and sends -10 x its gradient',
    training: { batching: 'throughput' },
    start: (context) => (message) => {
      if (message.type === 'hello') return { ...message, samplesPerSecond: 1e300 };
      if (message.type !== 'update') return message;
      return { ...mapGradient(message, context, (grads) => scaled(grads, -10)), timing: { ...message.timing, computeMs: 0 } };
    },
  },
  {
    id: 'stale-replay',
    description: 'replays its first gradient every round, for the current round and version, naming the weights it was computed from',
    start: () => {
      let first: Message | undefined;
      return onUpdates((message) => {
        first ??= message;
        return { ...message, tensors: first.tensors, losses: first.losses, weightsHash: first.weightsHash };
      });
    },
  },
  {
    id: 'stale-relabelled',
    description: 'replays its first gradient every round with every field of the current assignment (the weights hash echoed)',
    start: () => {
      let first: Message | undefined;
      return onUpdates((message) => {
        first ??= message;
        return { ...message, tensors: first.tensors, losses: first.losses };
      });
    },
  },
];

/** The attack with this id; throws naming the known ones. */
export function attackById(id: string): Attack {
  const attack = ATTACKS.find((candidate) => candidate.id === id);
  if (!attack) throw new Error(`no attack ${JSON.stringify(id)}; known: ${ATTACKS.map((known) => known.id).join(', ')}`);
  return attack;
}
