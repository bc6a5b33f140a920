import { ErrorCode, TesseraError } from '../protocol/errors.ts';
import { cddpm, ddpm } from './diffusion/ddpm.ts';
import { cdcgan } from './gan/cdcgan.ts';
import { dcgan } from './gan/dcgan.ts';
import type { ModelSpec } from './types.ts';
import { vae } from './vae/vae.ts';

const specs = new Map<string, ModelSpec<any>>();

/** Registers a model family under its wire id; a duplicate id is a programming error. */
export function registerModel(spec: ModelSpec<any>): void {
  if (specs.has(spec.id)) throw new Error(`model id ${spec.id} is registered already`);
  specs.set(spec.id, spec);
}

/** The model family for a wire id, or an UnknownModel error naming the field. */
export function getModel(id: string, field = 'model.id'): ModelSpec<any> {
  const spec = specs.get(id);
  if (!spec) throw new TesseraError(ErrorCode.UnknownModel, `unknown model ${JSON.stringify(id)}; known: ${[...specs.keys()].join(', ')}`, { field });
  return spec;
}

export function listModels(): ModelSpec<any>[] {
  return [...specs.values()];
}

registerModel(dcgan);
registerModel(cdcgan);
registerModel(vae);
for (const spec of [ddpm, cddpm]) registerModel(spec);
