import type { ExecutionContext } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';
import { API_KEY_COST_KEY } from '../api-auth.constants.js';
import { markGuarded, readRouteAccess, type RouteAccess } from './route-access.js';

/** What the guard needs to know of a route: its access rules and what a call costs. */
export interface RouteRules extends RouteAccess {
  /** Quota credits a call spends (`@ApiKeyCost()`), default 1. */
  cost: number;
}

/**
 * The guard's rules per handler, read from the decorators once: route metadata never
 * changes after start-up, so this keeps reflection off every request.
 */
export class RouteRulesCache {
  private readonly rules = new WeakMap<object, WeakMap<object, RouteRules>>();

  constructor(private readonly reflector: Reflector) {}

  get(context: ExecutionContext): RouteRules {
    const controller = context.getClass();
    const handler = context.getHandler();
    let byHandler = this.rules.get(controller);
    if (!byHandler) this.rules.set(controller, (byHandler = new WeakMap()));
    let rules = byHandler.get(handler);
    if (!rules) {
      // The nearest metadata wins (see `readRouteAccess`).
      const access = readRouteAccess(this.reflector, handler, controller);
      rules = {
        ...access,
        cost: this.reflector.getAllAndOverride<number | undefined>(API_KEY_COST_KEY, [handler, controller]) ?? 1,
      };
      // Outside HTTP the decorators hand the key only to handlers the guard checks.
      if (!access.isPublic) markGuarded(controller, handler);
      byHandler.set(handler, rules);
    }
    return rules;
  }
}
