import { madeArena } from './simd.ts';
import type { NamedArrays } from '../codec/types.ts';

/** The first tensor holding NaN or Infinity, and where, or undefined when all are finite. */
export function findNonFinite(tensors: NamedArrays): { name: string; index: number } | undefined {
  for (const [name, values] of Object.entries(tensors)) {
    for (let i = 0; i < values.length; i++) {
      // x - x is NaN exactly for NaN and ±Infinity: one comparison per element.
      if (values[i] - values[i] !== 0) return { name, index: i };
    }
  }
  return undefined;
}

/**
 * Each tensor's sum of squares, in float64: one pass that gives the norms and
 * whether every value is finite. A NaN or an infinity makes its sum
 * non-finite, and finite float32 values cannot (their squares are below 2^256,
 * so even billions of them stay far from float64's limit).
 */
export function squaredNorms(tensors: NamedArrays): Record<string, number> {
  const squares: Record<string, number> = {};
  for (const [name, values] of Object.entries(tensors)) squares[name] = sumOfSquares(values);
  return squares;
}

/** The L2 norm of the tensors `names` (all of them when absent) from their sums of squares. */
export function normOfSquares(squares: Readonly<Record<string, number>>, names: readonly string[] = Object.keys(squares)): number {
  let sum = 0;
  for (const name of names) sum += squares[name];
  return Math.sqrt(sum);
}

/** The L2 norm of one tensor, summed in float64. */
export function l2Norm(values: Float32Array): number {
  return Math.sqrt(sumOfSquares(values));
}

/** The L2 norm of all tensors together. */
export function globalNorm(tensors: NamedArrays): number {
  let sum = 0;
  for (const values of Object.values(tensors)) sum += sumOfSquares(values);
  return Math.sqrt(sum);
}

// The loops below are functions of their own so V8 optimises each as a whole (inside the callers' loops they ran
// several times slower, through on-stack replacement).

/**
 * Four partial sums: one chain of additions waits on each add's latency, four overlap (~2x on 22k values).
 * Values in this thread's SimdArena go to its kernel, which sums the same way two lanes at a time.
 */
function sumOfSquares(values: Float32Array): number {
  const arena = madeArena();
  if (arena?.holds(values)) return arena.sumOfSquares(values);
  const length = values.length;
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  let i = 0;
  for (; i + 3 < length; i += 4) {
    const w = values[i];
    const x = values[i + 1];
    const y = values[i + 2];
    const z = values[i + 3];
    a += w * w;
    b += x * x;
    c += y * y;
    d += z * z;
  }
  for (; i < length; i++) a += values[i] * values[i];
  return a + b + (c + d);
}

function squaredDistance(values: Float32Array, other: ArrayLike<number>, scale: number): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const difference = scale * values[i] - other[i];
    sum += difference * difference;
  }
  return sum;
}

/** The L2 distance between `scale` x `tensors` and `centre` (same names and lengths), summed in float64. */
export function distanceTo(tensors: NamedArrays, centre: Readonly<Record<string, ArrayLike<number>>>, scale = 1): number {
  let sum = 0;
  for (const [name, values] of Object.entries(tensors)) sum += squaredDistance(values, centre[name], scale);
  return Math.sqrt(sum);
}
