import { SetMetadata } from '@nestjs/common';
import { API_KEY_COST_KEY } from '../api-auth.constants.js';

/**
 * Credits a call to this route spends from the key's quota (`policy.quota`). Default
 * 1; `0` makes the route free. Rate limits count every call once, whatever its cost.
 * On a method it overrides the controller's cost.
 */
export const ApiKeyCost = (cost: number): MethodDecorator & ClassDecorator => {
  if (!Number.isSafeInteger(cost) || cost < 0 || cost > 1_000_000_000) {
    throw new Error(`nestjs-api-auth: @ApiKeyCost() needs an integer from 0 to 1000000000 (got ${String(cost)}).`);
  }
  return SetMetadata(API_KEY_COST_KEY, cost);
};
