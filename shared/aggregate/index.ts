import { centeredClip } from './centered-clip.ts';
import { mean } from './mean.ts';
import { median } from './median.ts';
import { registerRule } from './registry.ts';
import { trimmedMean } from './trimmed-mean.ts';

// Registered once, here: importing this module is all a job needs to find any rule its config names.
registerRule(mean);
registerRule(trimmedMean);
registerRule(median);
registerRule(centeredClip);

export * from './types.ts';
export * from './registry.ts';
export { mean } from './mean.ts';
export { trimmedMean, MAX_TRIM_FRACTION } from './trimmed-mean.ts';
export { median } from './median.ts';
export { centeredClip } from './centered-clip.ts';
export { CLIP_MULTIPLE } from './clip.ts';
export { StreamingMean } from './streaming-mean.ts';
