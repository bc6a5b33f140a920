import type { ErrorCode } from '../protocol/errors.ts';

/** The body of every API failure (TesseraError.toWire): the code, what went wrong, and the field at fault. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    /** The dotted path of the field at fault. */
    field?: string;
  };
}
