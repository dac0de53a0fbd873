// Fault injection around real adapters (threat model, "fault injection"). A FaultPlan wraps each
// port a service is built with; every call to a port method is one step, named by port, method
// and occurrence (`blobs.stat`, `blobs.stat#2`). A traced run without a fault lists the steps;
// a run with a target throws once, either before the real call (it never happened) or after it
// (it happened, but its answer was lost, as when a process dies right after a write). Nothing is
// simulated: every call that is not failed goes to the emulators.

export type FaultWhen = 'before' | 'after';

export interface FaultPoint {
  readonly step: string;
  readonly when: FaultWhen;
}

export class InjectedFault extends Error {
  constructor(point: FaultPoint) {
    super(`injected fault ${point.when} ${point.step}`);
    this.name = 'InjectedFault';
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

export class FaultPlan {
  /** Every step called so far, in order. */
  readonly trace: string[] = [];
  readonly #target: FaultPoint | undefined;
  readonly #counts = new Map<string, number>();
  #fired = false;

  constructor(target?: FaultPoint) {
    this.#target = target;
  }

  /** Whether the fault was injected (a target the run never reached is a broken test). */
  get fired(): boolean {
    return this.#fired;
  }

  /** The same port, with each method call traced and possibly failed. */
  wrap<T extends object>(port: string, real: T): T {
    // The proxy's own target is an empty object: adapters are frozen, and a proxy may not
    // answer for a frozen target's method with another function.
    return new Proxy({} as T, {
      get: (_, property) => {
        const value: unknown = Reflect.get(real, property);
        if (typeof value !== 'function' || typeof property !== 'string') return value;
        return (...args: unknown[]) => this.#call(`${port}.${property}`, () => value.apply(real, args));
      },
    });
  }

  #stepName(base: string): string {
    const count = (this.#counts.get(base) ?? 0) + 1;
    this.#counts.set(base, count);
    return count === 1 ? base : `${base}#${count}`;
  }

  #shouldFail(step: string, when: FaultWhen): boolean {
    if (this.#fired || this.#target?.step !== step || this.#target.when !== when) return false;
    this.#fired = true;
    return true;
  }

  #call(base: string, real: () => unknown): unknown {
    const step = this.#stepName(base);
    this.trace.push(step);
    if (this.#shouldFail(step, 'before')) throw new InjectedFault({ step, when: 'before' });
    const result = real();
    if (isAsyncIterable(result)) return this.#afterStream(step, result);
    if (result instanceof Promise) {
      return result.then((value: unknown) => {
        if (this.#shouldFail(step, 'after')) throw new InjectedFault({ step, when: 'after' });
        return value;
      });
    }
    if (this.#shouldFail(step, 'after')) throw new InjectedFault({ step, when: 'after' });
    return result;
  }

  /** A read fails after its last byte arrived (a reset at the very end of a download). */
  async *#afterStream(step: string, source: AsyncIterable<unknown>): AsyncGenerator<unknown> {
    yield* source;
    if (this.#shouldFail(step, 'after')) throw new InjectedFault({ step, when: 'after' });
  }
}

/** Every step of a trace, before and after. */
export function faultPointsOf(steps: readonly string[]): FaultPoint[] {
  return steps.flatMap((step) => [
    { step, when: 'before' as const },
    { step, when: 'after' as const },
  ]);
}
