import { createHash } from 'node:crypto';
import { ErrorCode, TesseraError } from '../../shared/protocol/errors.ts';

/** How JetStream's object store writes a digest, and so how both stores record one. */
const PREFIX = 'SHA-256=';

/** The SHA-256 of `bytes` as the object store records it: `SHA-256=` and the base64url of the hash. */
export function sha256Digest(bytes: Uint8Array): string {
  return `${PREFIX}${createHash('sha256').update(bytes).digest('base64url')}`;
}

/**
 * Refuses checkpoint bytes that do not match a recorded digest: with none of
 * `recorded` (empty, not a SHA-256 digest) or matching none of them, a
 * BadCheckpoint TesseraError naming `where`. Padded and unpadded base64 both
 * match (the nats client pads, node:crypto does not).
 */
export function checkDigest(bytes: Uint8Array, recorded: readonly unknown[], where: string): void {
  const digests = recorded.filter((digest): digest is string => typeof digest === 'string' && digest.startsWith(PREFIX) && digest.length > PREFIX.length);
  if (digests.length === 0) {
    throw new TesseraError(ErrorCode.BadCheckpoint, `the checkpoint in ${where} has no SHA-256 digest recorded: it cannot be told from a corrupt one`, {
      field: 'checkpoint.digest',
    });
  }
  const actual = createHash('sha256').update(bytes).digest();
  if (digests.some((digest) => Buffer.from(digest.slice(PREFIX.length), 'base64url').equals(actual))) return;
  throw new TesseraError(
    ErrorCode.BadCheckpoint,
    `the checkpoint in ${where} does not match its digest (${bytes.byteLength} bytes hash to ${sha256Digest(bytes)}, recorded ${digests.join(' or ')}): it is corrupt`,
    { field: 'checkpoint.digest' },
  );
}
