import { ProtocolError } from '../../shared/core/protocol/index.ts';

function describe(error: unknown): string {
  return error instanceof ProtocolError ? error.code : `not a ProtocolError: ${String(error)}`;
}

/** The ProtocolError code a call throws, or a description of what happened instead. */
export function protocolCodeOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return describe(error);
  }
  return 'no error';
}

/** The same for an async call. */
export async function protocolCodeOfAsync(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (error) {
    return describe(error);
  }
  return 'no error';
}
