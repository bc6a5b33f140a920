import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { unpack } from '../../shared/codec/packr.ts';
import type { TesseraError } from '../../shared/protocol/errors.ts';
import { LIMITS } from '../../shared/protocol/messages.ts';
import type { ChannelHandler, WorkerChannel } from '../../shared/transport/coordinator.ts';
import { takeOver } from './handed-over.ts';
import { WebSocketTransport } from './websocket.ts';

/**
 * The WebSocket transport against a real ws client on loopback: the
 * per-connection message limit (set through ws's receiver internals, so this
 * fails if a ws upgrade moves them) and the bound on what waits for a worker
 * that does not read.
 */

/** A handler that records what the transport tells it and sets each new connection's limit. */
class RecordingHandler implements ChannelHandler {
  readonly channels: WorkerChannel[] = [];
  readonly messages: number[] = [];
  readonly refused: TesseraError[] = [];
  readonly closed: string[] = [];
  constructor(private readonly limit: number) {}
  onOpen(channel: WorkerChannel): void {
    this.channels.push(channel);
    channel.limitMessages(this.limit);
  }
  /** Whether each message's buffer was handed over (transports/handed-over.ts), in order. */
  readonly handedOver: boolean[] = [];
  onMessage(_channel: WorkerChannel, bytes: Uint8Array): void {
    this.messages.push(bytes.byteLength);
    this.handedOver.push(takeOver(bytes) !== undefined);
  }
  onRefused(_channel: WorkerChannel, error: TesseraError): void {
    this.refused.push(error);
  }
  onClose(_channel: WorkerChannel, reason: string): void {
    this.closed.push(reason);
  }
}

describe('WebSocket transport', () => {
  let server: Server | undefined;
  let transport: WebSocketTransport | undefined;

  afterEach(async () => {
    await transport?.close();
    await new Promise<void>((done) => (server ? server.close(() => done()) : done()));
  });

  async function serve(handler: ChannelHandler, maxBufferedBytes?: number): Promise<string> {
    server = createServer();
    transport = new WebSocketTransport(server, { path: '/ws', pingIntervalMs: 60_000, maxBufferedBytes });
    await transport.start(handler);
    await new Promise<void>((done) => server!.listen(0, '127.0.0.1', done));
    return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
  }

  async function connect(url: string): Promise<WebSocket> {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    return socket;
  }

  const closeOf = (socket: WebSocket) => new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));

  it('refuses a message above the connection’s limit from its header, and takes one at the limit', async () => {
    const handler = new RecordingHandler(1000);
    const url = await serve(handler);
    const socket = await connect(url);
    socket.send(new Uint8Array(1000));
    await vi.waitFor(() => expect(handler.messages).toEqual([1000]));
    // One byte more: below the server's default, so only the connection's own limit refuses it.
    const closed = closeOf(socket);
    socket.send(new Uint8Array(1001));
    expect(await closed).toBe(1009);
    // The header says 64 MB; the transport must refuse before the payload, which is never sent here.
    const liar = await connect(url);
    const liarClosed = closeOf(liar);
    const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0x04, 0, 0, 0, 1, 2, 3, 4]);
    (liar as unknown as { _socket: import('node:net').Socket })._socket.write(header);
    expect(await liarClosed).toBe(1009);
    await vi.waitFor(() => expect(handler.refused.map((error) => error.code)).toEqual(['TOO_LARGE', 'TOO_LARGE']));
    expect(handler.messages).toEqual([1000]);
  });

  it('hands over a message ws read into a buffer of its own, never one viewing a socket read', async () => {
    const handler = new RecordingHandler(1024 * 1024);
    const socket = await connect(await serve(handler));
    // 200 KB spans several socket reads (64 KB each): ws gathers it into a buffer of its own, which the message fills.
    socket.send(new Uint8Array(200_000));
    // A small message is a view of the chunk a read filled (its frame's header is in it too): never handed over.
    socket.send(new Uint8Array(100));
    await vi.waitFor(() => expect(handler.messages).toEqual([200_000, 100]));
    expect(handler.handedOver).toEqual([true, false]);
    socket.close();
  });

  it('raises a connection’s limit above the server’s default when told to (the ws internal still works)', async () => {
    const handler = new RecordingHandler(LIMITS.maxHelloBytes);
    const url = await serve(handler);
    const socket = await connect(url);
    await vi.waitFor(() => expect(handler.channels).toHaveLength(1));
    handler.channels[0].limitMessages(1024 * 1024);
    socket.send(new Uint8Array(1024 * 1024));
    await vi.waitFor(() => expect(handler.messages).toEqual([1024 * 1024]));
    // Lowered again: the same size is now refused.
    handler.channels[0].limitMessages(LIMITS.maxHelloBytes);
    const closed = closeOf(socket);
    socket.send(new Uint8Array(LIMITS.maxHelloBytes + 1));
    expect(await closed).toBe(1009);
  });

  it('closes a worker that does not read once more than maxBufferedBytes wait for it', async () => {
    const handler = new RecordingHandler(LIMITS.maxHelloBytes);
    const url = await serve(handler, 256 * 1024);
    const socket = await connect(url);
    await vi.waitFor(() => expect(handler.channels).toHaveLength(1));
    // The client stops reading: the kernel's buffers fill, then ws's.
    (socket as unknown as { _socket: import('node:net').Socket })._socket.pause();
    const weights = { type: 'weights', hash: 'h', version: 0, codec: 'f32', tensors: new Uint8Array(64 * 1024) } as const;
    for (let i = 0; i < 2_000 && handler.closed.length === 0; i++) {
      handler.channels[0].send(weights);
      if (i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await vi.waitFor(() => expect(handler.closed).toHaveLength(1), { timeout: 5_000 });
    socket.terminate();
  });

  it('sends a batch’s messages in one write to the TCP socket, in order (the ws internal still works)', async () => {
    const handler = new RecordingHandler(1000);
    const url = await serve(handler);
    const socket = await connect(url);
    const rounds: number[] = [];
    socket.on('message', (data: Buffer) => rounds.push((unpack(data) as { round: number }).round));
    await vi.waitFor(() => expect(handler.channels).toHaveLength(1));
    const [channel] = handler.channels;
    const tcp = (channel as unknown as { socket: { _socket: Socket } }).socket._socket;
    const writes = vi.spyOn(tcp, '_write');
    const writevs = vi.spyOn(tcp, '_writev');
    channel.batch!(() => {
      channel.send({ type: 'ack', round: 1 });
      channel.send({ type: 'ack', round: 2 });
      channel.send({ type: 'ack', round: 3 });
    });
    expect([writes.mock.calls.length, writevs.mock.calls.length]).toEqual([0, 1]);
    // The same messages unbatched: a write each.
    channel.send({ type: 'ack', round: 4 });
    channel.send({ type: 'ack', round: 5 });
    expect(writes.mock.calls.length + writevs.mock.calls.length).toBe(3);
    await vi.waitFor(() => expect(rounds).toEqual([1, 2, 3, 4, 5]));
    socket.close();
  });
});
