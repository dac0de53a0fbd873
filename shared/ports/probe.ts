/** A dependency that can say whether it is reachable, for health checks. */
export interface Probe {
  readonly name: string;
  check(signal: AbortSignal): Promise<void>;
}
