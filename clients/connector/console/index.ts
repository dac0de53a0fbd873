// The front-desk web console (docs/CONSOLE.md): what the connector's bin wires as
// `cb-connector console` and `cb-connector staff add|list|remove|password`.
export { serveConsole, DEFAULT_CONSOLE_PORT, type ConsoleOptions, type RunningConsole } from './server.ts';
export {
  addStaff,
  listStaff,
  removeStaff,
  setPassword,
  ROLES,
  MIN_PASSWORD_LENGTH,
  type Role,
  type StaffMember,
} from './staff.ts';
export { bsnScheme, patternScheme, type PatientNumberScheme } from './patient-number.ts';
export type { OidcOptions } from './oidc.ts';
export { ConsoleError, type ConsoleErrorCode } from './errors.ts';
export { addConsoleCommands } from './commands.ts';
