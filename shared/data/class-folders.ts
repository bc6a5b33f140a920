/**
 * A folder name per class, for writing a labelled dataset out: the dataset's
 * class names where they make distinct safe names (an images dataset's own
 * subfolders, sorted, so reading the export back as an images dataset gives
 * the same labels), else the labels, padded so they sort in label order.
 */
export function classFolders(classes: number, names?: readonly string[]): string[] {
  const safe = names?.map((name) => name.replace(/[^\w.-]/g, '_'));
  const usable = safe !== undefined && safe.length === classes && new Set(safe).size === classes && safe.every((name) => name !== '' && !name.startsWith('.'));
  return usable ? safe : Array.from({ length: classes }, (_, label) => String(label).padStart(String(classes - 1).length, '0'));
}
