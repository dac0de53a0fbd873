// The audit transparency log's endpoints, for the two parties that check it: the hospital's
// witness (pairing function, hospital-signed) and the patient's phone (records function,
// device-signed). Each answers only about the caller's own hospital's log.
import {
  checkpointQuerySchema,
  cosignatureBodySchema,
  parseBoundary,
  parseJsonBody,
} from '../core/protocol/index.ts';
import type { Clock } from '../ports/clock.ts';
import type { HospitalRegistry, NonceStore } from '../ports/pairing-store.ts';
import type { DeviceCaller } from './device-caller.ts';
import { createHospitalCaller, type SignedCall } from './signed-call.ts';
import type { CheckpointAnswer, Transparency } from './transparency.ts';

export interface WitnessApi {
  /** The newest platform-signed checkpoint of the caller's log, with a consistency proof. */
  checkpoint(call: SignedCall, query: Readonly<Record<string, string>>): Promise<CheckpointAnswer>;
  /** Takes the witness's cosignature of one of those checkpoints. */
  cosign(call: SignedCall): Promise<{ size: number; recorded: boolean }>;
}

export function createWitnessApi(options: {
  readonly hospitals: HospitalRegistry;
  readonly nonces: NonceStore;
  readonly clock: Clock;
  readonly transparency: Transparency;
}): WitnessApi {
  const hospitalOf = createHospitalCaller(options);
  return Object.freeze({
    async checkpoint(call: SignedCall, query: Readonly<Record<string, string>>) {
      const { fromSize } = parseBoundary(checkpointQuerySchema, query);
      const hospitalId = await hospitalOf(call);
      return options.transparency.latestCheckpoint(hospitalId, fromSize);
    },
    async cosign(call: SignedCall) {
      const body = parseJsonBody(cosignatureBodySchema, call.body);
      const hospitalId = await hospitalOf(call);
      return options.transparency.cosign(hospitalId, body.checkpoint, body.witnessKey);
    },
  });
}

export interface DeviceCheckpointApi {
  /** The newest cosigned checkpoint of the device's hospital's log, with a consistency proof. */
  checkpoint(call: SignedCall, query: Readonly<Record<string, string>>): Promise<CheckpointAnswer>;
}

export function createDeviceCheckpointApi(options: {
  readonly caller: DeviceCaller;
  readonly transparency: Transparency;
}): DeviceCheckpointApi {
  return Object.freeze({
    async checkpoint(call: SignedCall, query: Readonly<Record<string, string>>) {
      const { fromSize } = parseBoundary(checkpointQuerySchema, query);
      const device = await options.caller(call);
      return options.transparency.witnessedCheckpoint(device.hospitalId, fromSize);
    },
  });
}
