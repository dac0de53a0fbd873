// SoftHSM2 tokens for the tests of the connector's PKCS#11 custody (.ci/run installs softhsm2):
// a configuration of the test's own in a temporary folder, and tokens initialised in it.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

/**
 * Writes `dir`/softhsm2.conf (tokens in `dir`/tokens, `extraConf` appended) and initialises a
 * token for each label with the user `pin` and a random SO PIN; returns the configuration's path.
 */
export async function initSoftHsmTokens(
  dir: string,
  labels: readonly string[],
  pin: string,
  extraConf = '',
): Promise<string> {
  await mkdir(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(
    conf,
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\n${extraConf}`,
  );
  const soPin = randomBytes(12).toString('hex');
  for (const label of labels) {
    execFileSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin],
      { stdio: 'ignore', env: { ...process.env, SOFTHSM2_CONF: conf } },
    );
  }
  return conf;
}

/**
 * What `onboardConnector` needs for a connector whose keys are created in a fresh SoftHSM2 token
 * labelled `token` (`options`), and the environment its later calls need (`tokenEnv`, known once
 * the token exists).
 */
export function softHsmCustody(token: string, pin: string) {
  let conf: string | undefined;
  return {
    options: {
      keyArgs: ['--custody', 'pkcs11', '--module', SOFTHSM_MODULE, '--token-label', token],
      env: { CB_HSM_PIN: pin },
      async prepare(dir: string) {
        conf = await initSoftHsmTokens(dir, [token], pin);
        return { SOFTHSM2_CONF: conf };
      },
    },
    tokenEnv(): NodeJS.ProcessEnv {
      if (conf === undefined) throw new Error('the token is made when the connector is onboarded');
      return { SOFTHSM2_CONF: conf, CB_HSM_PIN: pin };
    },
  };
}
