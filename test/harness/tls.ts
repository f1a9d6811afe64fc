/** Test certificates made with openssl: a CA, a server certificate for 127.0.0.1, client certificates. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pem {
  cert: string;
  key: string;
}

export function makeCa(name: string, directory: string): Pem {
  const key = join(directory, `${name}.key`);
  const cert = join(directory, `${name}.crt`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

export function issue(ca: Pem, cn: string, directory: string, extensions: string): Pem {
  const caKey = join(directory, 'ca-for-issue.key');
  const caCert = join(directory, 'ca-for-issue.crt');
  writeFileSync(caKey, ca.key);
  writeFileSync(caCert, ca.cert);
  const key = join(directory, `${cn}.key`);
  const csr = join(directory, `${cn}.csr`);
  const cert = join(directory, `${cn}.crt`);
  const ext = join(directory, `${cn}.ext`);
  writeFileSync(ext, extensions);
  execFileSync(
    'openssl',
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${cn}`, '-keyout', key, '-out', csr],
    { stdio: 'ignore' },
  );
  execFileSync(
    'openssl',
    ['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', cert],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

/** A CA, a server certificate for 127.0.0.1, a client of that CA and a client of a foreign CA. */
export function testPki() {
  const directory = mkdtempSync(join(tmpdir(), 'tessia-pki-'));
  try {
    const ca = makeCa('tessia-test-ca', directory);
    const foreignCa = makeCa('foreign-ca', directory);
    return {
      ca,
      server: issue(ca, 'runner', directory, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'),
      client: issue(ca, 'mesh-control', directory, 'extendedKeyUsage=clientAuth\n'),
      foreignClient: issue(foreignCa, 'intruder', directory, 'extendedKeyUsage=clientAuth\n'),
    };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
