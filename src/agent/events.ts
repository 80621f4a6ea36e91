/**
 * The event stream of one agent (`GET /v1/events`, WebSocket). Each connection has its own `seq`
 * (+1 per message) and its own heartbeat timer: every second by default, or `?heartbeatMs=N`
 * (50..60000) for dashboards that want a faster stream. Nothing runs while nobody listens.
 * An injected latency fault delays every emitted event by that much.
 * Defect profiles (src/agent/defects.ts): `event-lag` delivers every message `lagMs` after it was
 * stamped (its `ts` is the time of the event, as in a buffered pipeline); `event-drops` numbers a
 * message and never sends it (the subscriber sees a gap in `seq`). The hello is never dropped.
 *
 * Bounded (src/agent/limits.ts): at most MAX_EVENT_CLIENTS subscribers (a further upgrade is
 * answered `429` with a JSON reason and closed); a subscriber whose unsent messages (its
 * `bufferedAmount`) pass MAX_EVENT_BUFFERED_BYTES, a client that does not read, is closed with
 * code 1008 and a reason (and dropped 1 s later if it does not even take the close), instead of
 * its queue growing without bound.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { LimitExceeded, MAX_EVENT_BUFFERED_BYTES, MAX_EVENT_CLIENTS } from './limits.ts';
import type { AgentEvent, EventType } from './types.ts';
import { epochMs } from './util.ts';

interface Conn {
  ws: WebSocket;
  seq: number;
  timer: NodeJS.Timeout;
}

export class EventHub {
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });
  private readonly conns = new Set<Conn>();
  private readonly agentId: string;
  private readonly delayMs: () => number;
  private readonly heartbeat: () => Record<string, unknown>;
  private readonly hello: () => Record<string, unknown>;
  private readonly lagMs: number;
  private readonly drop: (() => boolean) | null;
  /** Upgrades accepted and not yet open (they count against MAX_EVENT_CLIENTS too). */
  private upgrading = 0;
  /** Subscribers closed for not reading (slow consumers). */
  slowClosed = 0;

  constructor(opts: {
    agentId: string;
    delayMs: () => number;
    heartbeat: () => Record<string, unknown>;
    hello: () => Record<string, unknown>;
    /** The `event-lag` defect: ms between stamping a message and sending it (0: off). */
    lagMs?: number;
    /** The `event-drops` defect: true when this message is to be dropped. */
    drop?: () => boolean;
  }) {
    this.agentId = opts.agentId;
    this.delayMs = opts.delayMs;
    this.heartbeat = opts.heartbeat;
    this.hello = opts.hello;
    this.lagMs = opts.lagMs ?? 0;
    this.drop = opts.drop ?? null;
  }

  get subscribers(): number {
    return this.conns.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, heartbeatMs: number): void {
    const clients = this.conns.size + this.upgrading;
    if (clients >= MAX_EVENT_CLIENTS) {
      const body = JSON.stringify(new LimitExceeded(429, 'eventClients', clients + 1, MAX_EVENT_CLIENTS, 'event stream subscribers').outcome().body);
      socket.end(
        `HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.upgrading++;
    let counted = true;
    const uncount = (): void => {
      if (counted) this.upgrading--;
      counted = false;
    };
    socket.once('close', uncount);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      uncount();
      const conn: Conn = {
        ws,
        seq: 0,
        timer: setInterval(() => this.send(conn, 'heartbeat', this.heartbeat()), heartbeatMs),
      };
      this.conns.add(conn);
      const drop = (): void => {
        clearInterval(conn.timer);
        this.conns.delete(conn);
      };
      ws.on('close', drop);
      ws.on('error', drop);
      // Clients do not talk to us; ignore anything they send.
      ws.on('message', () => undefined);
      this.send(conn, 'hello', this.hello());
    });
  }

  private send(conn: Conn, type: EventType, data: Record<string, unknown>): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    conn.seq += 1;
    if (this.drop !== null && type !== 'hello' && this.drop()) return;
    const ev: AgentEvent = { type, agent: this.agentId, seq: conn.seq, ts: epochMs(), data };
    const text = JSON.stringify(ev);
    if (conn.ws.bufferedAmount + text.length > MAX_EVENT_BUFFERED_BYTES) {
      this.closeSlow(conn);
      return;
    }
    if (this.lagMs > 0) {
      setTimeout(() => {
        if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(text);
      }, this.lagMs);
      return;
    }
    conn.ws.send(text);
  }

  /** A subscriber that does not read: closed with 1008 and the reason, dropped if it does not take that either. */
  private closeSlow(conn: Conn): void {
    clearInterval(conn.timer);
    this.conns.delete(conn);
    this.slowClosed++;
    const queued = conn.ws.bufferedAmount;
    conn.ws.close(1008, `slow consumer: ${queued} bytes unsent, limit eventBufferedBytes = ${MAX_EVENT_BUFFERED_BYTES}`);
    setTimeout(() => conn.ws.terminate(), 1000).unref();
  }

  /** Emit to every subscriber (after the latency fault, if any). */
  emit(type: EventType, data: Record<string, unknown>): void {
    if (this.conns.size === 0) return;
    const delay = this.delayMs();
    if (delay > 0) {
      setTimeout(() => {
        for (const c of this.conns) this.send(c, type, data);
      }, delay);
      return;
    }
    for (const c of this.conns) this.send(c, type, data);
  }

  close(): void {
    for (const c of this.conns) {
      clearInterval(c.timer);
      c.ws.terminate();
    }
    this.conns.clear();
    this.wss.close();
  }
}
