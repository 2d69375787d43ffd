// Type-checked against the packed .d.ts files with the consumer's TypeScript (the
// latest), skipLibCheck off: our declarations must hold up in a strict consumer build.
import { MikroORM } from '@mikro-orm/postgresql';
import { ApiAuthModule, ApiKeyService, type ApiKey, type ApiKeyBackend } from 'nestjs-api-auth';
import { ApiKeyEntity, MikroOrmBackend, createApiKeyEntity } from 'nestjs-api-auth/mikro-orm';

export const entities = [ApiKeyEntity, createApiKeyEntity({ tableName: 'other_keys' })];

export function authModule() {
  return ApiAuthModule.forRootAsync({
    inject: [MikroORM],
    useFactory: (orm: MikroORM) => {
      const backend: ApiKeyBackend = new MikroOrmBackend(orm, { ensureSchema: true, pageSize: 100 });
      return { backend };
    },
  });
}

export async function issue(service: ApiKeyService): Promise<ApiKey['id']> {
  const { apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
  return apiKey.id;
}
