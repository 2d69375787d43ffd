import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { entityTag } from './if-match.js';

/**
 * Sends `ETag: "<version>"` with every single-key answer of the management routes:
 * a key resource (`GET /:id`, `PATCH`, revoke) or an answer carrying one as `apiKey`
 * (issue, rotate). A client sends it back in `If-Match` to write only the version it saw.
 */
@Injectable()
export class EntityTagInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      map((body: unknown) => {
        const version = versionOf(body);
        if (version !== undefined) {
          // Express and Fastify replies both have `header(name, value)`.
          const reply = context.switchToHttp().getResponse<{ header(name: string, value: string): unknown }>();
          reply.header('ETag', entityTag(version));
        }
        return body;
      }),
    );
  }
}

function versionOf(body: unknown): number | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const { version, apiKey } = body as { version?: unknown; apiKey?: { version?: unknown } };
  const found = typeof version === 'number' ? version : apiKey?.version;
  return typeof found === 'number' ? found : undefined;
}
