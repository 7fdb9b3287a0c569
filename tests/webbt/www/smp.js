// SMP over Web Bluetooth, as browser MCUmgr tools speak it: one write (without response) per
// request on smp_svr's characteristic, the answer in notifications joined by the length in the
// 8-byte SMP header, matched to its request by sequence number.
"use strict";

const SMP_SERVICE = "8d53dc1d-1db7-4cd3-868b-8a527460aa84";
const SMP_CHARACTERISTIC = "da2e7828-fbce-4e01-ae9e-261174997c48";
const OP_READ = 0, OP_WRITE = 2;

class SmpTimeout extends Error {}

class SmpBle {
  constructor(log) {
    this.log = log;
    this.device = null;
    this.characteristic = null;
    this.seq = 0;
    this.rx = new Uint8Array(0);
    this.pending = new Map();
    this.requests = 0;
    this.notifications = 0;
    this.disconnects = 0;
    this._onDisconnect = [];
  }

  // The chooser: needs a user gesture (a click).
  async choose() {
    this.device = await navigator.bluetooth.requestDevice({ filters: [{ services: [SMP_SERVICE] }] });
    this.device.addEventListener("gattserverdisconnected", () => this._disconnected());
    this.log(`chose ${this.device.name} (${this.device.id})`);
  }

  async connect() {
    const server = await this.device.gatt.connect();
    const service = await server.getPrimaryService(SMP_SERVICE);
    const characteristic = await service.getCharacteristic(SMP_CHARACTERISTIC);
    characteristic.addEventListener("characteristicvaluechanged", (event) => {
      const view = event.target.value;
      this._notified(new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength)));
    });
    await characteristic.startNotifications();
    this.rx = new Uint8Array(0);
    this.characteristic = characteristic;
    this.log("connected");
  }

  get connected() {
    return this.device !== null && this.device.gatt.connected && this.characteristic !== null;
  }

  // Resolves at the next disconnect.
  disconnected() {
    return new Promise((resolve) => this._onDisconnect.push(resolve));
  }

  _disconnected() {
    this.disconnects++;
    this.characteristic = null;
    this.log("disconnected");
    for (const [, request] of this.pending) request.reject(new Error("disconnected"));
    this.pending.clear();
    for (const resolve of this._onDisconnect.splice(0)) resolve();
  }

  _notified(bytes) {
    this.notifications++;
    const joined = new Uint8Array(this.rx.length + bytes.length);
    joined.set(this.rx);
    joined.set(bytes, this.rx.length);
    this.rx = joined;
    // A response may span notifications, and one notification may end one and start the next.
    while (this.rx.length >= 8) {
      const length = 8 + (this.rx[2] << 8 | this.rx[3]);
      if (this.rx.length < length) break;
      const frame = this.rx.slice(0, length);
      this.rx = this.rx.slice(length);
      this._frame(frame);
    }
  }

  _frame(frame) {
    const seq = frame[6];
    const request = this.pending.get(seq);
    if (request === undefined) {
      this.log(`answer to no pending request (seq ${seq}): dropped`);
      return;
    }
    this.pending.delete(seq);
    try {
      request.resolve({ op: frame[0] & 7, group: frame[4] << 8 | frame[5], id: frame[7],
                        body: cbor.decode(frame.slice(8)) });
    } catch (error) {
      request.reject(error);
    }
  }

  // One request; resolves with the answer's body, rejects with SmpTimeout if none comes.
  async send(op, group, id, body, timeoutMs) {
    if (!this.connected) throw new Error("not connected");
    const payload = cbor.encode(body);
    const seq = this.seq;
    this.seq = (this.seq + 1) & 0xff;
    const frame = new Uint8Array(8 + payload.length);
    frame.set([op, 0, payload.length >> 8, payload.length & 0xff, group >> 8, group & 0xff, seq, id]);
    frame.set(payload, 8);
    const answer = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        this.rx = new Uint8Array(0);  // a half-received answer is lost with its request
        reject(new SmpTimeout(`no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(seq, {
        resolve: (value) => { clearTimeout(timer); resolve(value); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      });
    });
    this.requests++;
    await this.characteristic.writeValueWithoutResponse(frame);
    const response = await answer;
    const rc = response.body.rc ?? response.body.err?.rc ?? 0;
    if (rc !== 0) throw new Error(`group ${group} command ${id}: rc ${rc}`);
    return response.body;
  }
}
