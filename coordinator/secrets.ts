import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** A new random secret: 32 bytes, hex (what MAKE_SECRET prints). */
export function newSecret(): string {
  return randomBytes(32).toString('hex');
}

/**
 * The secret saved at `path`, or a new one written there first. The file is
 * readable by its owner only (mode 0600), so a restart keeps the secret
 * without it ever being printed.
 */
export async function loadOrCreateSecret(path: string, create: () => string = newSecret): Promise<string> {
  try {
    const saved = (await readFile(path, 'utf8')).trim();
    // A copy restored from a backup or an archive may have lost its mode.
    await chmod(path, 0o600);
    if (saved !== '') return saved;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = create();
  await mkdir(dirname(path), { recursive: true });
  // `wx` would refuse an existing (empty) file; the mode applies when the file is created, chmod when it was not.
  await writeFile(path, `${secret}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return secret;
}

/** Whether a given token equals the expected one, in constant time (digests have one length, so not even the length leaks). */
export function sameToken(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
