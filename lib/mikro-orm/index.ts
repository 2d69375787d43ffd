// Entry "nestjs-api-auth/mikro-orm". Optional peers: @mikro-orm/core and @mikro-orm/postgresql.
export { ApiKeyEntity, createApiKeyEntity, type ApiKeyEntityOptions } from './api-key.entity.js';
export { DEFAULT_TABLE_NAME } from './api-key.table.js';
export { MikroOrmBackend, type ApiKeyRecordPage } from './mikro-orm.backend.js';
export type { MikroOrmBackendOptions, MikroOrmLookupPoolOptions, ResolvedMikroOrmBackendOptions } from './mikro-orm-backend.options.js';
