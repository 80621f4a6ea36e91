/**
 * The test cluster's PKI, made with the openssl command: one CA, the API server's serving
 * certificate, client certificates (admin in system:masters, controller manager, scheduler, one
 * per node in system:nodes for the Node authorizer, kube-proxy, the API server's kubelet client),
 * each kubelet's serving certificate (its node IP) and the service-account signing key.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from 'js-yaml';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface Cert {
  cert: string; // path
  key: string; // path
}

function leaf(dir: string, name: string, subject: string, ext: string, ca = 'ca'): Cert {
  openssl(
    ['req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject],
    dir,
  );
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '825', '-sha256', '-extfile', `${name}.ext`],
    dir,
  );
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

const CLIENT_EXT = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n';

export interface Pki {
  ca: string;
  caKey: string;
  apiserver: Cert;
  admin: Cert;
  controllerManager: Cert;
  scheduler: Cert;
  nodes: Record<string, Cert>;
  saKey: string;
  saPub: string;
  frontProxyCa: string;
  frontProxyClient: Cert;
  apiserverKubeletClient: Cert;
  /** Each kubelet's serving certificate, by node name. */
  kubelets: Record<string, Cert>;
  /** kube-proxy (user system:kube-proxy, bound to system:node-proxier by default). */
  kubeProxy: Cert;
}

/**
 * `apiserverIPs`: extra addresses in the API server's certificate (the host IP pods reach it on);
 * `kubeletIPs`: the nodes by name with their IPs (a serving certificate each).
 */
export function makePki(dir: string, nodeNames: string[], opts: { apiserverIPs: string[]; kubeletIPs: Record<string, string> }): Pki {
  mkdirSync(dir, { recursive: true });
  openssl(
    ['req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', '/CN=swarmbench-test-cluster-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'],
    dir,
  );
  const serverExt =
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' +
    `subjectAltName=IP:127.0.0.1,IP:10.96.0.1,${opts.apiserverIPs.map((ip) => `IP:${ip},`).join('')}DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n`;
  const pki: Pki = {
    ca: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    apiserver: leaf(dir, 'apiserver', '/CN=kube-apiserver', serverExt),
    admin: leaf(dir, 'admin', '/O=system:masters/CN=swarmbench-admin', CLIENT_EXT),
    controllerManager: leaf(dir, 'controller-manager', '/CN=system:kube-controller-manager', CLIENT_EXT),
    scheduler: leaf(dir, 'scheduler', '/CN=system:kube-scheduler', CLIENT_EXT),
    nodes: {},
    saKey: join(dir, 'sa.key'),
    saPub: join(dir, 'sa.pub'),
    apiserverKubeletClient: leaf(dir, 'apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client', CLIENT_EXT),
    frontProxyCa: '',
    frontProxyClient: { cert: '', key: '' },
    kubelets: {},
    kubeProxy: leaf(dir, 'kube-proxy', '/CN=system:kube-proxy', CLIENT_EXT),
  };
  for (const [n, ip] of Object.entries(opts.kubeletIPs)) {
    pki.kubelets[n] = leaf(dir, `kubelet-${n}`, `/O=system:nodes/CN=system:node:${n}`, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:${ip},DNS:${n}\n`);
  }
  for (const n of nodeNames) pki.nodes[n] = leaf(dir, `node-${n}`, `/O=system:nodes/CN=system:node:${n}`, CLIENT_EXT);
  // The aggregation layer's own CA and client (front proxy).
  openssl(
    ['req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', 'front-proxy-ca.key', '-out', 'front-proxy-ca.crt', '-days', '3650', '-subj', '/CN=swarmbench-front-proxy-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'],
    dir,
  );
  pki.frontProxyCa = join(dir, 'front-proxy-ca.crt');
  pki.frontProxyClient = leaf(dir, 'front-proxy-client', '/CN=front-proxy-client', CLIENT_EXT, 'front-proxy-ca');
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'], dir);
  openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  return pki;
}

const b64 = (file: string): string => readFileSync(file).toString('base64');

/** A kubeconfig with everything embedded, so the file can be copied anywhere. */
export function kubeconfig(opts: { server: string; ca: string; user: string; cert?: Cert; token?: string; namespace?: string }): string {
  const user: Record<string, string> = {};
  if (opts.cert) {
    user['client-certificate-data'] = b64(opts.cert.cert);
    user['client-key-data'] = b64(opts.cert.key);
  }
  if (opts.token) user.token = opts.token;
  return dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'swarmbench', cluster: { server: opts.server, 'certificate-authority-data': b64(opts.ca) } }],
    users: [{ name: opts.user, user }],
    contexts: [{ name: 'swarmbench', context: { cluster: 'swarmbench', user: opts.user, ...(opts.namespace ? { namespace: opts.namespace } : {}) } }],
    'current-context': 'swarmbench',
    preferences: {},
  });
}
