// A one-line progress bar on stderr for large files (only when asked or on a terminal).
export function progressBar(
  enabled: boolean,
): (stage: 'seal' | 'upload', done: number, total: number) => void {
  let last = '';
  return (stage, done, total) => {
    if (!enabled || total < 4 * 1024 * 1024) return;
    const percent = total === 0 ? 100 : Math.floor((100 * done) / total);
    const line = `${stage === 'seal' ? 'encrypting' : 'uploading '} [${'#'.repeat(percent / 4).padEnd(25)}] ${percent}% of ${(total / 1048576).toFixed(0)} MiB`;
    if (line === last) return;
    last = line;
    process.stderr.write(`\r${line}${done >= total ? '\n' : ''}`);
  };
}
