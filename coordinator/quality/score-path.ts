export async function scorePath(_path: string, _options: Record<string, unknown>): Promise<void> {
  throw new Error('not yet');
}
