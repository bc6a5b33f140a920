/*
 * The worker protocol for the k6 scripts (ws-workers.js): a minimal msgpack
 * codec and the few messages a simulated worker sends. Plain JavaScript with
 * no imports, since k6 runs neither TypeScript nor npm packages (and has no
 * TextEncoder); k6-protocol.test.ts holds it to the real thing (msgpackr,
 * parseWorkerMessage, the f32 codec), so it cannot drift unnoticed.
 */

/** shared/protocol/messages.ts PROTOCOL_VERSION. */
export const PROTOCOL_VERSION = 3;

// ---- msgpack: nil, bool, numbers, str, bin, array, map (what the protocol uses) ----

function utf8Encode(text) {
  const bytes = [];
  for (const char of text) {
    const code = char.codePointAt(0);
    if (code < 0x80) bytes.push(code);
    else if (code < 0x800) bytes.push(0xc0 | (code >> 6), 0x80 | (code & 63));
    else if (code < 0x10000) bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
    else bytes.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
  }
  return bytes;
}

function utf8Decode(bytes, start, end) {
  let text = '';
  for (let i = start; i < end;) {
    const byte = bytes[i];
    let code;
    if (byte < 0x80) {
      code = byte;
      i += 1;
    } else if (byte < 0xe0) {
      code = ((byte & 31) << 6) | (bytes[i + 1] & 63);
      i += 2;
    } else if (byte < 0xf0) {
      code = ((byte & 15) << 12) | ((bytes[i + 1] & 63) << 6) | (bytes[i + 2] & 63);
      i += 3;
    } else {
      code = ((byte & 7) << 18) | ((bytes[i + 1] & 63) << 12) | ((bytes[i + 2] & 63) << 6) | (bytes[i + 3] & 63);
      i += 4;
    }
    text += String.fromCodePoint(code);
  }
  return text;
}

class Writer {
  constructor() {
    this.bytes = new Uint8Array(1024);
    this.view = new DataView(this.bytes.buffer);
    this.length = 0;
  }

  reserve(count) {
    if (this.length + count <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + count) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  byte(value) {
    this.reserve(1);
    this.bytes[this.length++] = value;
  }

  uint(value, size) {
    this.reserve(size);
    if (size === 1) this.view.setUint8(this.length, value);
    else if (size === 2) this.view.setUint16(this.length, value);
    else this.view.setUint32(this.length, value);
    this.length += size;
  }

  raw(bytes) {
    this.reserve(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** A type byte and a length in the smallest of the 8/16/32-bit forms. */
  sized(length, type8, type16, type32) {
    if (type8 !== undefined && length < 0x100) {
      this.byte(type8);
      this.uint(length, 1);
    } else if (length < 0x10000) {
      this.byte(type16);
      this.uint(length, 2);
    } else {
      this.byte(type32);
      this.uint(length, 4);
    }
  }

  value(value) {
    if (value === null || value === undefined) this.byte(0xc0);
    else if (value === true) this.byte(0xc3);
    else if (value === false) this.byte(0xc2);
    else if (typeof value === 'number') this.number(value);
    else if (typeof value === 'string') {
      const bytes = utf8Encode(value);
      if (bytes.length < 32) this.byte(0xa0 | bytes.length);
      else this.sized(bytes.length, 0xd9, 0xda, 0xdb);
      this.raw(bytes);
    } else if (value instanceof Uint8Array) {
      this.sized(value.length, 0xc4, 0xc5, 0xc6);
      this.raw(value);
    } else if (Array.isArray(value)) {
      if (value.length < 16) this.byte(0x90 | value.length);
      else this.sized(value.length, undefined, 0xdc, 0xdd);
      for (const item of value) this.value(item);
    } else if (typeof value === 'object') {
      const keys = Object.keys(value).filter((key) => value[key] !== undefined);
      if (keys.length < 16) this.byte(0x80 | keys.length);
      else this.sized(keys.length, undefined, 0xde, 0xdf);
      for (const key of keys) {
        this.value(key);
        this.value(value[key]);
      }
    } else throw new Error(`msgpack: cannot encode ${typeof value}`);
  }

  number(value) {
    if (Number.isInteger(value) && value >= 0 && value <= 0xffffffff) {
      if (value < 0x80) {
        this.byte(value);
      } else {
        const size = value < 0x100 ? 1 : value < 0x10000 ? 2 : 4;
        this.byte(size === 1 ? 0xcc : size === 2 ? 0xcd : 0xce);
        this.uint(value, size);
      }
    } else if (Number.isInteger(value) && value < 0 && value >= -0x80000000) {
      if (value >= -32) this.byte(value & 0xff);
      else {
        this.byte(0xd2);
        this.reserve(4);
        this.view.setInt32(this.length, value);
        this.length += 4;
      }
    } else {
      this.byte(0xcb);
      this.reserve(8);
      this.view.setFloat64(this.length, value);
      this.length += 8;
    }
  }
}

/** msgpack bytes of a value (byte strings as Uint8Array). */
export function encode(value) {
  const writer = new Writer();
  writer.value(value);
  return writer.bytes.slice(0, writer.length);
}

/** The value of msgpack bytes; byte strings come back as Uint8Array views. */
export function decode(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const read = () => {
    const type = bytes[at++];
    if (type < 0x80) return type;
    if (type >= 0xe0) return type - 0x100;
    if ((type & 0xf0) === 0x80) return map(type & 15);
    if ((type & 0xf0) === 0x90) return array(type & 15);
    if ((type & 0xe0) === 0xa0) return string(type & 31);
    const u = (size) => {
      const value = size === 1 ? view.getUint8(at) : size === 2 ? view.getUint16(at) : view.getUint32(at);
      at += size;
      return value;
    };
    const s = (size) => {
      const value = size === 1 ? view.getInt8(at) : size === 2 ? view.getInt16(at) : view.getInt32(at);
      at += size;
      return value;
    };
    switch (type) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return bin(u(1));
      case 0xc5:
        return bin(u(2));
      case 0xc6:
        return bin(u(4));
      case 0xca:
        at += 4;
        return view.getFloat32(at - 4);
      case 0xcb:
        at += 8;
        return view.getFloat64(at - 8);
      case 0xcc:
        return u(1);
      case 0xcd:
        return u(2);
      case 0xce:
        return u(4);
      case 0xcf:
        at += 8;
        return Number(view.getBigUint64(at - 8));
      case 0xd0:
        return s(1);
      case 0xd1:
        return s(2);
      case 0xd2:
        return s(4);
      case 0xd3:
        at += 8;
        return Number(view.getBigInt64(at - 8));
      case 0xd9:
        return string(u(1));
      case 0xda:
        return string(u(2));
      case 0xdb:
        return string(u(4));
      case 0xdc:
        return array(u(2));
      case 0xdd:
        return array(u(4));
      case 0xde:
        return map(u(2));
      case 0xdf:
        return map(u(4));
      default:
        throw new Error(`msgpack: type byte 0x${type.toString(16)} not supported`);
    }
  };
  const bin = (length) => {
    at += length;
    return bytes.subarray(at - length, at);
  };
  const string = (length) => {
    at += length;
    return utf8Decode(bytes, at - length, at);
  };
  const array = (length) => Array.from({ length }, read);
  const map = (length) => {
    const object = {};
    for (let i = 0; i < length; i++) {
      const key = read();
      object[key] = read();
    }
    return object;
  };
  const value = read();
  if (at !== bytes.length) throw new Error(`msgpack: ${bytes.length - at} bytes after the value`);
  return value;
}

// ---- the messages ----

/** The first message of a worker. */
export function hello({ name, token, jobId }) {
  return encode({ type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', backend: 'synthetic', device: 'k6', name, token, jobId });
}

export const heartbeat = () => encode({ type: 'heartbeat' });
export const leave = (reason) => encode({ type: 'leave', reason });
export const fetchWeights = (hash) => encode({ type: 'fetchWeights', hash });

/** Names and shapes of the tensors in a decoded weights message (f32 codec: msgpack {codec, tensors: [{name, dtype, shape, data}]}). */
export function tensorShapes(weights) {
  const wire = decode(weights.tensors);
  return wire.tensors.map((tensor) => ({ name: tensor.name, shape: tensor.shape }));
}

/** An update for `assign` with small random gradients of the given shapes, f32-encoded. */
export function update(assign, shapes, computeMs) {
  if (assign.codec !== 'f32') throw new Error(`the k6 worker encodes f32 only; the job uses ${assign.codec} (set training.codec=f32)`);
  const tensors = shapes.map(({ name, shape }) => {
    const count = shape.reduce((a, b) => a * b, 1);
    const data = new Uint8Array(count * 4);
    const view = new DataView(data.buffer);
    for (let i = 0; i < count; i++) view.setFloat32(i * 4, (Math.random() - 0.5) * 2e-3, true);
    return { name, dtype: 'float32', shape, data };
  });
  return encode({
    type: 'update',
    jobId: assign.jobId,
    round: assign.round,
    version: assign.version,
    weightsHash: assign.weightsHash,
    samples: assign.sampleIndices.length,
    codec: 'f32',
    tensors: encode({ codec: 'f32', tensors }),
    losses: { d: 1.386, g: 0.693 },
    timing: { computeMs, fetchMs: 0 },
  });
}

/** The exact bytes of a Uint8Array as an ArrayBuffer, for WebSocket.send. */
export function arrayBufferOf(bytes) {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}
