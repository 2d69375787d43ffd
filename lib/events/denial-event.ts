import type { ApiKeyView } from '../api-key.interface.js';
import type { ApiKeyFailure } from '../transport/refusal.js';
import type { ApiKeyEventSink } from './api-key-event.sink.js';
import { ApiKeyEventName } from './api-key.events.js';

/**
 * Emits `api-key.authentication-denied` for a refusal, when anyone listens: the guard's
 * and `consume`'s, so audit listeners see workers as they see routes.
 */
export function emitDenial(sink: ApiKeyEventSink | null, failure: ApiKeyFailure, apiKey: ApiKeyView | null | undefined): void {
  if (sink === null) return;
  sink({
    type: ApiKeyEventName.AuthenticationDenied,
    code: failure.code,
    status: failure.status,
    apiKeyId: apiKey?.id ?? null,
    ownerId: apiKey?.ownerId ?? null,
    at: new Date(),
  });
}
