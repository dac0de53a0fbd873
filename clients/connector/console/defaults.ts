// What the console's command line needs before the console itself is loaded: the bin declares
// `cb-connector console` without loading the server, which other commands never use.
export const DEFAULT_CONSOLE_PORT = 8480;
