// The CBOR that SMP needs (RFC 8949): maps, arrays, unsigned and negative integers, byte and
// text strings, booleans, null; definite and indefinite lengths (Zephyr's zcbor sends maps of
// indefinite length). Numbers above 2^53 do not occur in SMP.
"use strict";

const cbor = (() => {
  function head(out, major, n) {
    if (n < 24) out.push(major << 5 | n);
    else if (n < 0x100) out.push(major << 5 | 24, n);
    else if (n < 0x10000) out.push(major << 5 | 25, n >> 8, n & 0xff);
    else out.push(major << 5 | 26, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  }

  function put(out, value) {
    if (value === null) out.push(0xf6);
    else if (value === false) out.push(0xf4);
    else if (value === true) out.push(0xf5);
    else if (typeof value === "number") {
      if (!Number.isInteger(value)) throw new Error("cbor: only integers");
      if (value >= 0) head(out, 0, value); else head(out, 1, -1 - value);
    } else if (typeof value === "string") {
      const bytes = new TextEncoder().encode(value);
      head(out, 3, bytes.length);
      for (const b of bytes) out.push(b);
    } else if (value instanceof Uint8Array) {
      head(out, 2, value.length);
      for (const b of value) out.push(b);
    } else if (Array.isArray(value)) {
      head(out, 4, value.length);
      for (const item of value) put(out, item);
    } else {
      const keys = Object.keys(value);
      head(out, 5, keys.length);
      for (const key of keys) { put(out, key); put(out, value[key]); }
    }
  }

  function encode(value) {
    const out = [];
    put(out, value);
    return new Uint8Array(out);
  }

  function decode(bytes) {
    let pos = 0;
    const byte = () => {
      if (pos >= bytes.length) throw new Error("cbor: truncated");
      return bytes[pos++];
    };
    const argument = (info) => {
      if (info < 24) return info;
      if (info === 31) return -1; // indefinite
      let n = 0;
      for (let i = 0; i < 1 << (info - 24); i++) n = n * 256 + byte();
      return n;
    };
    const item = () => {
      const first = byte();
      const major = first >> 5, info = first & 0x1f;
      if (major === 7) {
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22 || info === 23) return null;
        throw new Error(`cbor: simple/float 0x${first.toString(16)} unsupported`);
      }
      const n = argument(info);
      switch (major) {
        case 0: return n;
        case 1: return -1 - n;
        case 2: case 3: {
          if (n < 0) throw new Error("cbor: indefinite strings unsupported");
          const slice = bytes.slice(pos, pos + n);
          pos += n;
          return major === 2 ? slice : new TextDecoder().decode(slice);
        }
        case 4: {
          const list = [];
          while (n < 0 ? bytes[pos] !== 0xff : list.length < n) list.push(item());
          if (n < 0) pos++;
          return list;
        }
        case 5: {
          const map = {};
          for (let i = 0; n < 0 ? bytes[pos] !== 0xff : i < n; i++) {
            const key = item();
            map[key] = item();
          }
          if (n < 0) pos++;
          return map;
        }
        default: throw new Error(`cbor: major type ${major} unsupported`);
      }
    };
    const value = item();
    if (pos !== bytes.length) throw new Error("cbor: trailing bytes");
    return value;
  }

  return { encode, decode };
})();
