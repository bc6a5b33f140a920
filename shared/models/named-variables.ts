import * as tf from '@tensorflow/tfjs';
import type { NamedArrays } from '../codec/types.ts';

/**
 * The trainable tensors of some tfjs layers models under their canonical
 * names: LayerVariable.originalName, the layer's own scoped name
 * (`g_dense/kernel`). tfjs uniquifies variable names per process, so those
 * differ between processes; the scoped names do not.
 */
export class NamedVariables {
  /** Canonical name -> shape, in the order the models and their layers were given. */
  readonly shapes: Record<string, number[]> = {};
  private readonly variables = new Map<string, tf.Variable>();
  private readonly byModel = new Map<tf.LayersModel, tf.Variable[]>();

  constructor(models: readonly tf.LayersModel[]) {
    for (const model of models) {
      const owned: tf.Variable[] = [];
      for (const weight of model.trainableWeights) {
        if (this.variables.has(weight.originalName)) throw new Error(`two trainable tensors are named ${weight.originalName}`);
        const variable = weight.read() as tf.Variable;
        this.variables.set(weight.originalName, variable);
        this.shapes[weight.originalName] = variable.shape.slice();
        owned.push(variable);
      }
      this.byModel.set(model, owned);
    }
  }

  /** The variables of one of the models, for tf.variableGrads. */
  of(model: tf.LayersModel): tf.Variable[] {
    const owned = this.byModel.get(model);
    if (!owned) throw new Error(`model ${model.name} is not one of these`);
    return owned;
  }

  get(): NamedArrays {
    const weights: NamedArrays = {};
    // A copy: the cpu backend hands out its own storage.
    for (const [name, variable] of this.variables) weights[name] = (variable.dataSync() as Float32Array).slice();
    return weights;
  }

  set(weights: NamedArrays): void {
    for (const [name, variable] of this.variables) {
      const values = weights[name];
      if (!values) throw new Error(`setWeights: missing tensor ${name}`);
      // A copy: the cpu backend would otherwise keep the caller's array as its storage.
      tf.tidy(() => variable.assign(tf.tensor(values.slice(), variable.shape)));
    }
  }

  /**
   * Gradients keyed by tfjs variable name (as tf.variableGrads returns them),
   * read back without blocking and keyed by canonical name. Every variable of
   * `models` (all of them by default) must have one. The tensors stay the caller's to dispose.
   */
  async read(grads: tf.NamedTensorMap, models: readonly tf.LayersModel[] = [...this.byModel.keys()]): Promise<NamedArrays> {
    const wanted = new Set(models.flatMap((model) => this.of(model)));
    const entries = [...this.variables].filter(([, variable]) => wanted.has(variable));
    const tensors = entries.map(([name, variable]) => {
      const grad = grads[variable.name];
      if (!grad) throw new Error(`no gradient for ${name}`);
      return grad;
    });
    // A copy: the cpu backend hands out its own storage.
    const values = await Promise.all(tensors.map(async (tensor) => ((await tensor.data()) as Float32Array).slice()));
    const result: NamedArrays = {};
    entries.forEach(([name], i) => (result[name] = values[i]));
    return result;
  }
}

/** Scalar tensors read back without blocking, by the same keys. */
export async function readScalars(scalars: Record<string, tf.Tensor>): Promise<Record<string, number>> {
  const entries = Object.entries(scalars);
  const values = await Promise.all(entries.map(async ([, tensor]) => (await tensor.data())[0]));
  return Object.fromEntries(entries.map(([name], i) => [name, values[i]]));
}
