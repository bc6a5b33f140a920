import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP relay on loopback to one target port that can be held: while held,
 * bytes are kept in both directions (nothing is lost, nothing is closed),
 * as a network that stalls does; release sends them on in order.
 *
 *   const proxy = await TcpProxy.start(4222);
 *   connect({ servers: `nats://127.0.0.1:${proxy.port}` });
 *   proxy.hold(); ...; proxy.release();
 *   await proxy.close();
 */
export class TcpProxy {
  private held = false;
  private readonly pending: (() => void)[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly server: Server = createServer((client) => this.relay(client));

  private constructor(private readonly targetPort: number) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** The port it listens on (loopback). */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops passing bytes on (they wait here). */
  hold(): void {
    this.held = true;
  }

  /** Passes on what waited, then everything as it comes. */
  release(): void {
    this.held = false;
    for (const send of this.pending.splice(0)) send();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private relay(client: Socket): void {
    const target = createConnection({ host: '127.0.0.1', port: this.targetPort });
    for (const socket of [client, target]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        target.destroy();
      });
    }
    const pass = (to: Socket) => (chunk: Buffer) => {
      if (this.held) this.pending.push(() => to.write(chunk));
      else to.write(chunk);
    };
    client.on('data', pass(target));
    target.on('data', pass(client));
  }
}
