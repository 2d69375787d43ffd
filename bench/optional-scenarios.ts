import type { GuardedScenario } from './scenarios.js';

/** Scenarios that need PostgreSQL or Redis; filled in as those backends land. */
export async function optionalScenarios(): Promise<GuardedScenario[]> {
  return [];
}
