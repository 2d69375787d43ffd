/** The HTTP control calls between the fleet soak's driver (fleet-driver.ts) and an instance (fleet-server.ts). */

/** Key prefix of the fleet deployment. */
export const FLEET_PREFIX = 'fleet_';

/** `POST /control/issue`: a key for `fleet-<owner>`, with a rate limit when `limit` is given. */
export interface IssueRequest {
  owner: number;
  limit?: number;
  windowMs?: number;
}

export interface IssueReply {
  key: string;
  id: string;
}

/** `POST /control/rotate`: the replacement, and when the old key's grace period ends (ms since the epoch). */
export interface RotateReply {
  key: string;
  id: string;
  graceEnd: number;
}
