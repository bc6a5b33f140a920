import * as check from '../../protocol/check.ts';
import { invalid } from '../../protocol/errors.ts';
import { fields, type Field, type Schema } from '../../protocol/schema.ts';
import type { ScheduleKind } from './schedule.ts';

/** The config of the unconditional DDPM (`ddpm`). */
export interface DdpmConfig {
  /** Diffusion steps T. */
  timesteps: number;
  schedule: ScheduleKind;
  /** U-Net channels at full resolution. */
  baseChannels: number;
  /** U-Net channel multiplier at full, half and quarter resolution (28x28, 14x14 and 7x7 for MNIST). */
  channelMultipliers: [number, number, number];
  /** Size of the sinusoidal timestep embedding (even). */
  timeEmbeddingDim: number;
  /** 'ddpm': ancestral, all T steps; 'ddim': deterministic (η = 0), `samplingSteps` steps. */
  sampler: 'ddpm' | 'ddim';
  /** DDIM steps, evenly spaced over T. */
  samplingSteps: number;
}

/** Classifier-free guidance settings of the class-conditional DDPM (`cddpm`). */
export interface GuidanceConfig {
  /** Probability that an example trains with its label replaced by "no label". */
  labelDropout: number;
  /** w in ε = ε_uncond + w (ε_cond - ε_uncond): 0 unconditional, 1 plain conditional. */
  guidanceScale: number;
}

export type CddpmConfig = DdpmConfig & GuidanceConfig;

/** Three positive integers, one per resolution. */
function multipliers(defaultValue: [number, number, number]): Field<[number, number, number]> {
  return {
    default: defaultValue,
    parse: (value, field) => {
      const values = check.integerArray(value, field, 3, 1, 16);
      if (values.length !== 3) invalid(field, 'three multipliers (full, half and quarter resolution)', value);
      return [values[0], values[1], values[2]];
    },
  };
}

function evenInteger(defaultValue: number, min: number, max: number): Field<number> {
  return {
    default: defaultValue,
    parse: (value, field) => {
      const parsed = check.integer(value, field, min, max);
      if (parsed % 2 !== 0) invalid(field, 'an even integer (half sines, half cosines)', value);
      return parsed;
    },
  };
}

export const ddpmSchema: Schema<DdpmConfig> = {
  // 1000 steps, as in the DDPM paper; training cost does not depend on T, only ancestral sampling's does.
  timesteps: fields.integer(1000, 20, 10_000),
  // Cosine (Nichol & Dhariwal): the linear schedule destroys 28x28 images too early, wasting the last steps.
  schedule: fields.oneOf<ScheduleKind>('cosine', ['linear', 'cosine']),
  // 32 channels at 28x28: a step at batch 32 takes about a second on wasm with 2 cores; ~0.7 M parameters.
  baseChannels: fields.integer(32, 4, 256),
  // Double the width once at 14x14 and keep it at 7x7; [1, 2, 4] is ~1.6x slower for little gain on digits.
  channelMultipliers: multipliers([1, 2, 2]),
  // 64: resolves 1000 steps well (the slowest sinusoid's period is ~10000 steps); the MLP widens it anyway.
  timeEmbeddingDim: evenInteger(64, 2, 1024),
  // DDIM: 50 network evaluations per sample instead of T = 1000, deterministic given x_T.
  sampler: fields.oneOf<DdpmConfig['sampler']>('ddim', ['ddpm', 'ddim']),
  // 50 DDIM steps: near the quality of 1000 ancestral steps (Song et al., Table 1), and samples stay cheap.
  samplingSteps: fields.integer(50, 1, 10_000),
};

export const cddpmSchema: Schema<CddpmConfig> = {
  ...ddpmSchema,
  // 0.1: the unconditional model guidance needs, learned from 10% of the examples (Ho & Salimans use 0.1-0.2).
  labelDropout: fields.number(0.1, 0, 1),
  // 3 (w = 2 in Ho & Salimans' (1 + w) ε_cond - w ε_uncond): clearly class-faithful digits, short of the saturation larger scales bring.
  guidanceScale: fields.number(3, 0, 20),
};
