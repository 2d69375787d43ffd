// Entry "nestjs-api-auth/swagger": the only part of the library that loads
// @nestjs/swagger, an optional peer. The root entry never imports this file.
export { createApiAuthDocument, type ApiAuthDocumentOptions } from './api-auth-document.js';
export { findApiKeyRoutes, type ApiKeyRoute } from './guarded-routes.js';
