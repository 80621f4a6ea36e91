/** Small HTTP(S) helpers for health checks (client certificates, self-signed serving certs). */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';

export interface Resp {
  status: number;
  body: string;
}

export function get(url: string, opts: { ca?: string; cert?: string; key?: string; insecure?: boolean; timeoutMs?: number } = {}): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const fn = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = fn(
      u,
      {
        method: 'GET',
        ...(u.protocol === 'https:'
          ? {
              ca: opts.ca ? readFileSync(opts.ca) : undefined,
              cert: opts.cert ? readFileSync(opts.cert) : undefined,
              key: opts.key ? readFileSync(opts.key) : undefined,
              rejectUnauthorized: !opts.insecure,
            }
          : {}),
        timeout: opts.timeoutMs ?? 3000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

export async function ok(url: string, opts: Parameters<typeof get>[1] = {}): Promise<boolean> {
  try {
    return (await get(url, opts)).status === 200;
  } catch {
    return false;
  }
}
