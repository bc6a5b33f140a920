import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { admitModel, type AdmissionCheck } from '../../shared/models/admission.ts';
import { registerModel } from '../../shared/models/registry.ts';
import { defaultDataShape } from '../../shared/models/data-shape.ts';
import type { DataShape, ModelSpec } from '../../shared/models/types.ts';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';

/** Absolute paths of the model modules this process loaded, in order (the browser bundle includes the same). */
const loaded: string[] = [];
/** Ids of the families those modules registered. */
const loadedIds = new Set<string>();

export function loadedModelModules(): readonly string[] {
  return loaded;
}

/**
 * Checks a family loaded from a module on the data a job gives it, when that
 * is not the data it was admitted on at load (its own imageShape and classes):
 * a family that says it builds for 32x32x3 must also keep the contract there.
 * Built-in families are checked at every shape by their tests.
 */
export async function admitForData(spec: ModelSpec<any>, config: object, data: DataShape): Promise<void> {
  const own = defaultDataShape(spec);
  if (!loadedIds.has(spec.id) || (own.imageShape.join('x') === data.imageShape.join('x') && own.classes === data.classes)) return;
  await admitModel(spec, config, 'dataset.shape', data);
}

/** The ModelSpec a module exports: its default export, else an export named `spec`. */
function specOf(module: Record<string, unknown>, path: string): ModelSpec<any> {
  const spec = (module.default ?? module.spec) as Partial<ModelSpec<any>> | undefined;
  const needed = ['id', 'defaults', 'parseConfig', 'networkOf', 'networks', 'imageShape', 'lossNames', 'createTrainer'] as const;
  const missing = spec && typeof spec === 'object' ? needed.filter((key) => spec[key] === undefined) : needed;
  if (missing.length > 0) {
    throw new TesseraError(ErrorCode.InvalidConfig, `${path} exports no ModelSpec (as default or as \`spec\`): missing ${missing.join(', ')}`, {
      field: 'model.module',
    });
  }
  return spec as ModelSpec<any>;
}

/**
 * Loads users' model families from TypeScript or JavaScript modules (tsx
 * compiles them), registers each under its id, and — with `admit` (the
 * coordinator) — runs the contract's checks on its default config first: a
 * family that breaks data parallelism is refused before any job uses it, with
 * the failed check named. Returns each family with its checks.
 */
export async function loadModelModules(paths: readonly string[], options: { admit: boolean }): Promise<{ spec: ModelSpec<any>; checks: AdmissionCheck[] }[]> {
  const results = [];
  for (const path of paths) {
    const absolute = resolve(path);
    let module: Record<string, unknown>;
    try {
      module = await import(pathToFileURL(absolute).href);
    } catch (error) {
      throw new TesseraError(ErrorCode.InvalidConfig, `could not load model module ${path}: ${(error as Error).message}`, { field: 'model.module' });
    }
    const spec = specOf(module, path);
    const checks = options.admit ? await admitModel(spec) : [];
    registerModel(spec);
    loaded.push(absolute);
    loadedIds.add(spec.id);
    results.push({ spec, checks });
  }
  return results;
}
