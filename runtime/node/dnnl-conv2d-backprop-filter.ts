import { FILTER_GRADIENT, conv2dInfo, float32, paramsOf, passOn, runConv, type Args } from './dnnl-addon.ts';

/** Conv2DBackpropFilter in oneDNN: a convolution's filter gradient. */
export function conv2dBackpropFilter(args: Args) {
  const { x, dy } = args.inputs;
  const attrs = args.attrs ?? {};
  const filterShape = attrs.filterShape as number[];
  const info = conv2dInfo(x.shape, filterShape, attrs, 1);
  const params = float32(x, dy) ? paramsOf(info) : undefined;
  return params ? runConv(args, FILTER_GRADIENT, x, dy, filterShape, params) : passOn('Conv2DBackpropFilter', args);
}
