// grpc-js ends its connection failures with "Resolution note: <note>", and the note is empty in the
// usual case ("…ECONNREFUSED 127.0.0.1:8081. Resolution note: "). Agent logs and CLI output show these
// texts, so the empty note is cut off; a note that says something is kept.
import type { ServiceError } from '@grpc/grpc-js';

const EMPTY_RESOLUTION_NOTE = /\.?\s*Resolution note:\s*$/;

export function withoutEmptyResolutionNote(text: string): string {
  return text.replace(EMPTY_RESOLUTION_NOTE, '');
}

/** Cleans `err`'s message and details in place (every listener of a stream sees the same object). */
export function cleanServiceError(err: Partial<ServiceError> & Error): void {
  err.message = withoutEmptyResolutionNote(err.message);
  if (typeof err.details === 'string') err.details = withoutEmptyResolutionNote(err.details);
}
