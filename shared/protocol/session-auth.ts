/**
 * The credential a worker's session presents on HTTP requests made for it
 * (a browser worker fetching its batch): `Authorization: Bearer
 * <workerId>.<dataToken>`, both from its welcome. Built and read here only.
 */

const SCHEME = 'Bearer ';
/** Worker ids and data tokens use letters, digits, `-` and `_` (base64url): `.` cannot occur in either. */
const PART = /^[A-Za-z0-9_-]{1,128}$/;

/** The Authorization header value for a session. */
export function sessionAuthorization(workerId: string, dataToken: string): string {
  return `${SCHEME}${workerId}.${dataToken}`;
}

/** The worker id and data token of an Authorization header, or undefined when it is not a session credential. */
export function parseSessionAuthorization(header: string | undefined): { workerId: string; dataToken: string } | undefined {
  if (!header?.startsWith(SCHEME)) return undefined;
  const [workerId, dataToken, ...rest] = header.slice(SCHEME.length).trim().split('.');
  if (rest.length > 0 || !PART.test(workerId ?? '') || !PART.test(dataToken ?? '')) return undefined;
  return { workerId, dataToken };
}
