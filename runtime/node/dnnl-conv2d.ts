import { FORWARD, conv2dInfo, float32, paramsOf, passOn, runConv, type Args } from './dnnl-addon.ts';

const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, leakyrelu: 2 };

/** Conv2D in oneDNN: NHWC float32, any strides, pads and dilations. */
export function conv2d(args: Args) {
  const { x, filter } = args.inputs;
  const info = conv2dInfo(x.shape, filter.shape, args.attrs ?? {});
  const params = float32(x, filter) ? paramsOf(info) : undefined;
  return params ? runConv(args, FORWARD, x, filter, info.outShape, params) : passOn('Conv2D', args);
}

/** FusedConv2D in oneDNN: Conv2D's, plus a per-channel bias and relu or leaky relu (others are passed on). */
export function fusedConv2d(args: Args) {
  const { x, filter, bias, preluActivationWeights } = args.inputs;
  const attrs = args.attrs ?? {};
  const info = conv2dInfo(x.shape, filter.shape, attrs);
  const activation = ACTIVATIONS[String(attrs.activation ?? 'linear')];
  const perChannelBias = !bias || bias.shape.reduce((a, b) => a * b, 1) === info.outChannels;
  const usable = activation !== undefined && !preluActivationWeights && float32(x, filter, bias) && perChannelBias;
  const params = usable ? paramsOf(info, activation, Number(attrs.leakyreluAlpha ?? 0.2)) : undefined;
  return params ? runConv(args, FORWARD, x, filter, info.outShape, params, bias) : passOn('FusedConv2D', args);
}
