// `npm start -- --host/--advertise` (docs/SANDBOX.md): which exposures the stack agrees to, and
// which callers the emulators' unauthenticated control endpoints serve once on the network.
import { describe, expect, it } from 'vitest';
import { isLocalCaller } from '../../emulator/local-caller.ts';
import { firstPrivateAddress, resolveExposure, StackOptionsError } from '../../emulator/stack.ts';
import { isNonGlobalIpv4 } from '../../shared/core/protocol/index.ts';

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return error instanceof StackOptionsError ? 'refused' : `unexpected: ${String(error)}`;
  }
  return 'accepted';
}

describe('the stack exposure', () => {
  it('stays a loopback stack without a marker by default', () => {
    expect(resolveExposure()).toEqual({ bind: '127.0.0.1', advertised: '127.0.0.1', basePath: '' });
    expect(resolveExposure('127.0.0.1')).toEqual({
      bind: '127.0.0.1',
      advertised: '127.0.0.1',
      basePath: '',
    });
  });

  it('serves every interface and advertises a private address with the development-stack marker', () => {
    expect(resolveExposure('0.0.0.0', '192.168.1.20')).toEqual({
      bind: '0.0.0.0',
      advertised: '192.168.1.20',
      basePath: '/development-stack',
    });
    expect(resolveExposure('0.0.0.0', '127.0.0.2').basePath).toBe('/development-stack');
  });

  it('picks this machine’s first private address, or asks for one', () => {
    const found = firstPrivateAddress();
    if (found === undefined) expect(refusal(() => resolveExposure('0.0.0.0'))).toBe('refused');
    else {
      expect(isNonGlobalIpv4(found)).toBe(true);
      expect(resolveExposure('0.0.0.0').advertised).toBe(found);
    }
  });

  it('refuses to advertise plain http anywhere a phone off the local network could be sent', () => {
    for (const [host, advertise] of [
      ['0.0.0.0', '8.8.8.8'],
      ['0.0.0.0', 'laptop.local'],
      ['0.0.0.0', 'fd00::2'],
      ['0.0.0.0', '192.168.1.256'],
      ['192.168.1.20', undefined], // only 127.0.0.1 or 0.0.0.0: the functions reach the recorder on loopback
      ['::', undefined],
      ['127.0.0.1', '192.168.1.20'], // nothing would listen there
    ] as const) {
      expect({ host, advertise, outcome: refusal(() => resolveExposure(host, advertise)) }).toEqual({
        host,
        advertise,
        outcome: 'refused',
      });
    }
  });
});

describe('local callers', () => {
  it('are loopback, or this machine through its own address', () => {
    const cases: [string | undefined, string | undefined, boolean][] = [
      ['127.0.0.1', '127.0.0.1', true],
      ['127.0.0.1', '192.168.1.20', true],
      ['::1', '::1', true],
      ['::ffff:127.0.0.1', '::ffff:127.0.0.1', true],
      ['192.168.1.20', '192.168.1.20', true],
      ['::ffff:192.168.1.20', '::ffff:192.168.1.20', true],
      ['192.168.1.30', '192.168.1.20', false],
      ['::ffff:192.168.1.30', '::ffff:192.168.1.20', false],
      ['128.0.0.1', '192.168.1.20', false],
      [undefined, '192.168.1.20', false],
    ];
    for (const [remoteAddress, localAddress, local] of cases) {
      expect({ remoteAddress, local: isLocalCaller({ remoteAddress, localAddress }) }).toEqual({
        remoteAddress,
        local,
      });
    }
  });
});
