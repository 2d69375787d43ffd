import { Controller, Get } from '@nestjs/common';
import { ApiKeyOwner, CurrentApiKey, Public, RequireScopes, type ApiKeyView } from 'nestjs-api-auth';

// The guard is registered globally in AppModule, so every route here needs a key
// unless it says @Public().
@Controller()
export class AppController {
  @Public()
  @Get('health')
  health() {
    return { status: 'ok' };
  }

  @Get('hello')
  hello(@ApiKeyOwner() ownerId: string) {
    return { message: `Hello, ${ownerId}!` };
  }

  @Get('reports')
  @RequireScopes('reports:read')
  reports(@CurrentApiKey() apiKey: ApiKeyView) {
    return { reports: ['q1', 'q2'], readBy: apiKey.name };
  }
}
