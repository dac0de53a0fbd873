// The Clinic Bridge device SDK: what a patient's phone does, for browsers, React Native and
// Node (docs/SDK.md). Pair from the QR text, sync records into the app's storage, list and
// revoke devices, erase. The app provides the storage of the device's keys (DeviceStore) and of
// the records (RecordSink); nothing here imports a Node built-in (sdk/node.ts holds the Node
// implementations of both).
export { ApiError, DeviceError, NetworkError, RefusedError } from './errors.ts';
export { createApiClient, responseBytes, withTransientRetries } from './api-client.ts';
export type { ApiCall, ApiClient, ApiClientOptions, RequestSigner } from './api-client.ts';
export { auditLogEntry, DeviceHome } from './home.ts';
export type { ApiClientFactory, Enrolment, StoredEnrolment } from './home.ts';
export { MemoryDeviceStore } from './store.ts';
export type { DeviceStore } from './store.ts';
export { pairFromQr } from './pair.ts';
export type { PairResult } from './pair.ts';
export { syncRecords } from './sync.ts';
export type { RecordSink, RecordWriter, SyncedRecord, SyncOptions } from './sync.ts';
export { checkAccessLogEntry, followAuditLog, verifiedAccessLog } from './access-log.ts';
export type { CheckedEntry } from './access-log.ts';
export { eraseEverything, listDevices, replacePushToken, revokeDevice } from './devices.ts';
export {
  approveLink,
  keepLinkedDevice,
  linkingDeviceOf,
  openLinkedRecord,
  receiveLink,
  showLinkInvitation,
} from './link.ts';
export type { ApprovedLink, LinkedDevice, LinkingDevice, LinkInvitation } from './link.ts';
