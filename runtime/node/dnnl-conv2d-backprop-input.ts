import { INPUT_GRADIENT, conv2dInfo, float32, paramsOf, passOn, runConv, type Args } from './dnnl-addon.ts';

/** Conv2DBackpropInput in oneDNN: a convolution's input gradient, and so every transposed convolution's forward pass. */
export function conv2dBackpropInput(args: Args) {
  const { dy, filter } = args.inputs;
  const attrs = args.attrs ?? {};
  const inputShape = attrs.inputShape as number[];
  const info = conv2dInfo(inputShape, filter.shape, attrs, 1);
  const params = float32(dy, filter) ? paramsOf(info) : undefined;
  return params ? runConv(args, INPUT_GRADIENT, dy, filter, inputShape, params) : passOn('Conv2DBackpropInput', args);
}
