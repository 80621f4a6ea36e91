import { describe, expect, it } from 'vitest';
import { parseArgs, resolveConfig } from '../../src/agent/cli.ts';

describe('agent CLI configuration', () => {
  it('flags: several agents with their own addresses and ids', () => {
    const cfg = resolveConfig(
      parseArgs(['--count', '3', '--hosts', '127.1.0.2,127.1.0.3,127.1.0.4', '--ids', 'a,b,c', '--port', '0', '--seeds', 'http://x:1,http://y:2', '--capacity', '8']),
      {},
    );
    expect(cfg.specs).toEqual([
      { id: 'a', host: '127.1.0.2', port: 0 },
      { id: 'b', host: '127.1.0.3', port: 0 },
      { id: 'c', host: '127.1.0.4', port: 0 },
    ]);
    expect(cfg.seeds).toEqual(['http://x:1', 'http://y:2']);
    expect(cfg.capacity).toBe(8);
    expect(cfg.control).toBe(false);
  });

  it('environment (Kubernetes): pod name, seeds, capacity, 0.0.0.0:$PORT, POD_IP advertised', () => {
    const cfg = resolveConfig(parseArgs([]), {
      SWARMBENCH_AGENT_ID: 'pool-7f9c-abc',
      SWARMBENCH_SEEDS: 'http://pool-0.pool:8080',
      SWARMBENCH_CAPACITY: '32',
      PORT: '9000',
      POD_IP: '10.0.0.7',
    });
    expect(cfg.specs).toEqual([{ id: 'pool-7f9c-abc', host: '0.0.0.0', port: 9000 }]);
    expect(cfg.seeds).toEqual(['http://pool-0.pool:8080']);
    expect(cfg.capacity).toBe(32);
    expect(cfg.advertiseHost).toBe('10.0.0.7');
    expect(resolveConfig(parseArgs([]), {}).specs[0]!.port).toBe(8080);
  });

  it('flags win over the environment; several agents on one address get consecutive ports', () => {
    const cfg = resolveConfig(parseArgs(['--capacity=4', '--count', '2', '--id', 'n']), { SWARMBENCH_CAPACITY: '32', PORT: '7000' });
    expect(cfg.capacity).toBe(4);
    expect(cfg.specs).toEqual([
      { id: 'n-0', host: '0.0.0.0', port: 7000 },
      { id: 'n-1', host: '0.0.0.0', port: 7001 },
    ]);
  });

  it('rejects bad input', () => {
    expect(() => resolveConfig(parseArgs(['--nope', '1']), {})).toThrow(/unknown option/);
    expect(() => resolveConfig(parseArgs(['--count', '2', '--ids', 'a']), {})).toThrow(/--ids/);
    expect(() => resolveConfig(parseArgs(['--capacity', '0']), {})).toThrow(/capacity/);
    expect(() => resolveConfig(parseArgs(['--count', '2', '--ids', 'a,a']), {})).toThrow(/unique/);
    expect(() => parseArgs(['--port'])).toThrow(/needs a value/);
  });
});
