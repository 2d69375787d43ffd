// Entry "nestjs-api-auth/terminus". Optional peer: @nestjs/terminus (12).
export { ApiKeyHealthIndicator, type ApiKeyHealthCheckOptions } from './api-key.health-indicator.js';
