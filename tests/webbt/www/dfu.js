// A firmware update over Web Bluetooth, step by step as browser DFU tools do it.
"use strict";

const GROUP_OS = 0, GROUP_IMAGE = 1;
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function log(text) {
  console.log(text);
  document.getElementById("log").textContent += text + "\n";
}

const dfu = {
  smp: new SmpBle(log),

  // The connect button: the chooser, then the GATT connection.
  async connect() {
    await this.smp.choose();
    await this.smp.connect();
  },

  async images() {
    return (await this.smp.send(OP_READ, GROUP_IMAGE, 0, {}, 5000)).images;
  },

  // After a reset: the board boots, then advertises again; try until it answers.
  async reconnect(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.smp.connect();
        await this.images();
        return attempt;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`no reconnect in ${timeoutMs} ms: ${error}`);
        if (this.smp.device.gatt.connected) this.smp.device.gatt.disconnect();  // start afresh
        await sleep(100);
      }
    }
  },

  // Erase slot 1, upload, test, reset, reconnect (without install: erase and upload only);
  // returns what happened.
  async update({ url, chunk = 244, timeoutMs = 2500, eraseTimeoutMs = 60000, minChunk = 16, install = true }) {
    const started = performance.now();
    const image = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const sha = new Uint8Array(await crypto.subtle.digest("SHA-256", image));
    const report = { bytes: image.length, chunks: [], halvings: [], requestsBefore: this.smp.requests };

    log("erase slot 1");
    const erased = performance.now();
    await this.smp.send(OP_WRITE, GROUP_IMAGE, 5, { slot: 1 }, eraseTimeoutMs);
    report.eraseMs = performance.now() - erased;

    log(`upload ${image.length} bytes in chunks of ${chunk}`);
    const uploaded = performance.now();
    let offset = 0;
    while (offset < image.length) {
      const data = image.slice(offset, offset + chunk);
      const body = offset === 0
        ? { image: 0, len: image.length, off: 0, sha: sha, data: data }
        : { off: offset, data: data };
      let answer;
      try {
        // The first chunk may wait for an erase of its own.
        answer = await this.smp.send(OP_WRITE, GROUP_IMAGE, 1, body, offset === 0 ? eraseTimeoutMs : timeoutMs);
      } catch (error) {
        if (!(error instanceof SmpTimeout) || chunk <= minChunk) throw error;
        chunk = Math.max(minChunk, chunk >> 1);
        report.halvings.push({ offset: offset, chunk: chunk });
        log(`timeout at offset ${offset}: chunk halved to ${chunk}`);
        continue;
      }
      report.chunks.push(data.length);
      offset = answer.off;
    }
    report.uploadMs = performance.now() - uploaded;
    report.chunk = chunk;
    if (!install) return report;

    const slot1 = (await this.images()).find((img) => img.slot === 1);
    report.hash = hex(slot1.hash);
    report.uploadedVersion = slot1.version;
    log(`slot 1: ${slot1.version}, hash ${report.hash}`);

    const tested = (await this.smp.send(OP_WRITE, GROUP_IMAGE, 0, { hash: slot1.hash, confirm: false }, 5000)).images;
    report.pending = tested.find((img) => img.slot === 1).pending;
    log(`test ${report.hash}: pending ${report.pending}`);

    // The board answers, then resets: the link drops from its side, which is expected.
    const gone = this.smp.disconnected();
    const answered = this.smp.send(OP_WRITE, GROUP_OS, 5, {}, 5000).then(() => true, () => false);
    await gone;
    report.resetAnswered = await answered;
    log("reset: the board dropped the link");

    report.reconnectAttempts = await this.reconnect(30000);
    const after = await this.images();
    const active = after.find((img) => img.active);
    report.activeVersion = active.version;
    report.activeSlot = active.slot;
    report.activeConfirmed = active.confirmed;
    report.requests = this.smp.requests - report.requestsBefore;
    report.totalMs = performance.now() - started;
    log(`reconnected: ${active.version} active in slot ${active.slot}`);
    return report;
  },
};

document.getElementById("connect").addEventListener("click", () => {
  dfu.connect().catch((error) => log(`connect failed: ${error}`));
});
document.getElementById("update").addEventListener("click", () => {
  dfu.update({ url: document.getElementById("image").value,
               chunk: Number(document.getElementById("chunk").value) })
    .catch((error) => log(`update failed: ${error}`));
});
