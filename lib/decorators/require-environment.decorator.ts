import { SetMetadata } from '@nestjs/common';
import { REQUIRED_ENVIRONMENT_KEY } from '../api-auth.constants.js';
import { isEnvironmentName } from '../policy/environment.js';

/**
 * Only keys of these environments may call the route (403 `environment_not_allowed`
 * otherwise), e.g. `@RequireEnvironment('live')` on a route that moves real money in
 * a deployment that also accepts `test` keys. On a method it overrides the controller.
 */
export const RequireEnvironment = (...environments: string[]): MethodDecorator & ClassDecorator => {
  if (environments.length === 0 || !environments.every(isEnvironmentName)) {
    throw new Error('nestjs-api-auth: @RequireEnvironment() needs one or more environment names (letters and digits, 1-16).');
  }
  return SetMetadata(REQUIRED_ENVIRONMENT_KEY, Object.freeze([...new Set(environments)]));
};
