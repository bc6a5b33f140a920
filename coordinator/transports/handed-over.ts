/**
 * Message buffers a transport hands over whole: the message fills its
 * ArrayBuffer, and the transport keeps no other view of it. Whoever takes
 * one over may move it to another thread (postMessage's transfer) instead
 * of copying what it needs out of it; every view of it is empty after that.
 * ws reads a message larger than a socket read into a buffer of its own,
 * exactly the message's size: at 512 workers a round's updates are 45 MB
 * of such buffers, which the fold thread (coordinator/job/fold-thread.ts)
 * takes over rather than copying each (docs/performance.md).
 */
const handedOver = new WeakSet<ArrayBufferLike>();

/** Marks `bytes`' buffer as the transport's to give when the message fills it; returns `bytes`. */
export function handOver(bytes: Uint8Array): Uint8Array {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && !(bytes.buffer instanceof SharedArrayBuffer)) handedOver.add(bytes.buffer);
  return bytes;
}

/** The buffer under `bytes` when a transport handed it over and nobody took it yet; the caller now owns it. */
export function takeOver(bytes: Uint8Array): ArrayBuffer | undefined {
  const buffer = bytes.buffer;
  if (!handedOver.delete(buffer)) return undefined;
  return buffer as ArrayBuffer;
}
