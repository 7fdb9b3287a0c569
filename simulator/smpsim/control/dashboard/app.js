// smpsim dashboard: the board's control API (same origin) drawn live.
//
// Events arrive on one WebSocket in batches; each updates a small model at once (cheap) and
// marks the parts of the page it touched. The page is redrawn at most once per animation frame,
// only the marked parts, so a flood of events (an upload at time scale 0) costs one redraw per
// frame. Slots and flash are re-read from the API after the events that change them, no more
// often than every few hundred milliseconds; nothing is polled.
"use strict";

const KEEP_LINES = 400;         // console lines kept on the page
const KEEP_SMP = 30;            // SMP exchanges shown
const STREAM_SMP = 2 * KEEP_SMP; // SMP events the server sends per send cycle (the latest)
const KEEP_BOOTS = 12;          // boots listed
const SMP_TABLE_MS = 250;       // the SMP table is redrawn at most this often
const FLAGS = ["bootable", "pending", "confirmed", "active", "permanent"];
const COMMANDS = {              // group -> command names (Zephyr's mgmt ids)
  os: ["echo", "console", "taskstat", "mpstat", "datetime", "reset", "params", "info", "bootloader"],
  img: ["state", "upload", "file", "corelist", "coreload", "erase", "slot_info"],
  stat: ["show", "list"], settings: ["read/write", "delete", "commit", "load/save"],
  fs: ["file", "status", "hash", "hash_types", "close"], shell: ["exec"],
  enum: ["count", "list", "single", "details"], zbasic: ["erase_storage"],
};
const MGMT_ERR = ["OK", "EUNKNOWN", "ENOMEM", "EINVAL", "ETIMEOUT", "ENOENT", "EBADSTATE",
  "EMSGSIZE", "ENOTSUP", "ECORRUPT", "EBUSY", "EACCESSDENIED", "TOO_OLD", "TOO_NEW"];
const ZEPHYR_LOG = /^(\[\d\d:\d\d:\d\d\.\d{3},\d{3}\] )<(err|wrn)> /;
const LOG_COLOUR = { err: "\x1b[1;31m", wrn: "\x1b[1;33m" };

const $ = (selector) => document.querySelector(selector);
// One board of a fleet (`/?board=ID`, smpsim fleet --control): its API is under /api/boards/ID.
const BOARD = new URLSearchParams(location.search).get("board");
const API = BOARD === null ? "/api" : `/api/boards/${encodeURIComponent(BOARD)}`;
if (BOARD !== null) document.title = `${BOARD} - smpsim dashboard`;

// -- the token of a board served with --control-token --------------------------------------------
// The ready line's address carries it in the fragment (#token=...), which a browser never sends
// to a server. It moves to this tab's session storage and out of the address bar (and history)
// before anything else; it goes to the API as a bearer header, and to the event stream as a
// WebSocket subprotocol (a browser cannot put a header on a WebSocket).
const TOKEN_KEY = "smpsim.token";
const token = takeToken();

function takeToken() {
  const given = new URLSearchParams(location.hash.slice(1)).get("token");
  if (given === null) {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (error) { return null; }
  }
  try { sessionStorage.setItem(TOKEN_KEY, given); } catch (error) { /* storage off: this load only */ }
  history.replaceState(null, "", location.pathname + location.search);
  return given;
}

function api(path, options = {}) {
  if (!token) return fetch(path, options);
  return fetch(path, { ...options, headers: { ...options.headers, Authorization: `Bearer ${token}` } });
}

function tokenProtocol() {
  const bytes = new TextEncoder().encode(token);
  const base64 = btoa(String.fromCharCode(...bytes));
  return `bearer.${base64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
}
const model = {
  board: null, boardAt: 0, slots: [], flash: null, faults: [],
  lines: [], consoleIndex: 0, smp: [], smpOpen: new Map(), upload: null,
  boots: [], nextBoot: 0, armed: null, seq: 0,
};
const stats = { events: 0, skipped: 0, messages: 0, renders: 0, maxFrameGapMs: 0 };
window.smpsimDashboard = { model, stats };

// -- redraw at most once a frame ---------------------------------------------------------------
const dirty = new Set();
const flashes = new Map();      // sector index -> "erase" | "write", since the last frame
let frameAsked = false;
let lastFrame = 0;

function mark(part) {
  dirty.add(part);
  if (!frameAsked) {
    frameAsked = true;
    requestAnimationFrame(frame);
  }
}

// A part nobody can read faster than a few times a second (the SMP table in a flood) is marked
// at most every gapMs: fewer layouts and paints, for the same picture.
const slowParts = new Map();     // part -> { last, timer }
function markSlowly(part, gapMs) {
  const entry = slowParts.get(part) || { last: 0, timer: 0 };
  slowParts.set(part, entry);
  if (entry.timer) return;
  const wait = entry.last + gapMs - performance.now();
  if (wait <= 0) { entry.last = performance.now(); mark(part); return; }
  entry.timer = setTimeout(() => { entry.timer = 0; entry.last = performance.now(); mark(part); }, wait);
}

function frame(now) {
  frameAsked = false;
  if (lastFrame) stats.maxFrameGapMs = Math.max(stats.maxFrameGapMs, now - lastFrame);
  lastFrame = now;
  stats.renders++;
  const parts = [...dirty];
  dirty.clear();
  for (const part of parts) DRAW[part]();
  document.body.dataset.seq = model.seq;
}

// -- reading the API, rate-limited -------------------------------------------------------------
function refresher(path, gapMs, apply) {
  let inFlight = false, again = false, timer = 0, last = 0;
  async function run() {
    timer = 0; inFlight = true; last = performance.now();
    try {
      const answer = await api(path, { cache: "no-store" });
      if (answer.ok) apply(await answer.json());
    } catch (error) {
      // The board went away: the event stream's reconnection reads everything again.
    } finally {
      inFlight = false;
      if (again) { again = false; ask(); }
    }
  }
  function ask() {
    if (inFlight) { again = true; return; }
    if (timer) return;
    timer = setTimeout(run, Math.max(0, gapMs - (performance.now() - last)));
  }
  return ask;
}

const refreshBoard = refresher(`${API}/board`, 250, (board) => {
  model.board = board; model.boardAt = performance.now(); mark("status");
});
const refreshSlots = refresher(`${API}/slots`, 300, (slots) => { model.slots = slots; mark("slots"); });
const refreshFlash = refresher(`${API}/flash`, 700, (flash) => { model.flash = flash; mark("flash"); });
const refreshFaults = refresher(`${API}/faults`, 250, (faults) => { model.faults = faults; mark("faults"); });

// -- the event stream --------------------------------------------------------------------------
let socket = null;

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const history = model.seq ? `since=${model.seq}` : "last=400";
  // Under a flood the server sends only the latest exchanges of each batch: a page shows no
  // more, and the board is spared turning the others into JSON for it.
  const url = `${scheme}//${location.host}${API}/events?${history}&smp=${STREAM_SMP}`;
  socket = token ? new WebSocket(url, ["smpsim", tokenProtocol()]) : new WebSocket(url);
  let opened = false;
  setLink("connecting");
  socket.onopen = () => {
    opened = true;
    setLink("live");
    refreshBoard(); refreshSlots(); refreshFlash(); refreshFaults();
  };
  socket.onmessage = (message) => {
    stats.messages++;
    for (const line of message.data.split("\n")) {
      if (line) take(JSON.parse(line));
    }
  };
  socket.onclose = async () => {
    // A handshake refused for its token says nothing to the page: the API says why.
    const refused = !opened && await api(`${API}/board`).then((answer) => answer.status === 401, () => false);
    if (refused) { setLink(token ? "refused" : "token"); return; }
    setLink("lost");
    setTimeout(connect, 1000);
  };
}

function setLink(state) {
  const link = $("#link");
  link.dataset.link = state;
  link.textContent = { live: "live", lost: "reconnecting…", connecting: "connecting…",
    refused: "token refused", token: "token needed" }[state];
  link.title = state === "refused" || state === "token"
    ? "this board wants its token: open the address smpsim printed on its ready line" : "the event stream";
}

function take(event) {
  stats.events++;
  if (event.kind === "gap") {   // fell behind: the kept state is read again
    refreshBoard(); refreshSlots(); refreshFlash(); refreshFaults(); loadConsole();
    return;
  }
  if (event.kind === "skipped") { stats.skipped += event.smp; return; }
  if (event.seq <= model.seq) return;
  model.seq = event.seq;
  const handler = ON[event.kind];
  if (handler) handler(event);
}

const ON = {
  board(event) {
    if (model.board) {
      model.board.state = event.state;
      model.board.boot_count = event.boot_count;
      mark("status");
    }
    if (event.state === "booting") model.nextBoot = event.boot_count + 1;
    if (event.state === "off" && currentBoot()) { currentBoot().power = "off"; mark("boot"); }
    refreshBoard();
    if (event.state !== "booting") { refreshSlots(); refreshFlash(); }
  },
  power(event) { refreshBoard(); noteArmed(event); },
  action(event) {
    if (event.action === "time-scale" && model.board) model.board.time_scale = event.scale;
    refreshBoard();
  },
  console(event) {
    if (event.index <= model.consoleIndex) return;
    model.consoleIndex = event.index;
    model.lines.push(event.line);
    mark("console");
  },
  smp: smpEvent,
  mcuboot(event) {
    if (event.phase === "start") {
      model.boots.push({ boot: model.nextBoot || (model.board ? model.board.boot_count : 0), phase: "start",
        swapType: "", swap: null, version: "", outcome: "", app: "", notes: [] });
      if (model.boots.length > KEEP_BOOTS) model.boots.shift();
    }
    const boot = currentBoot();
    if (!boot) return;
    if (event.phase === "decided" && (event.image || 0) === 0) boot.swapType = event.swap_type;
    if (event.phase === "jump") {
      boot.version = event.version;
      boot.outcome = boot.swapType === "revert" ? "reverted" : "jumped";
    }
    if (event.phase === "no_image") boot.outcome = "halted";
    boot.phase = event.phase;
    mark("boot");
    refreshSlots();
  },
  swap(event) {
    const boot = currentBoot();
    if (!boot) return;
    if (event.phase === "start") {
      boot.swap = { done: 0, total: event.ops_total || 0, sector: null, resumed: !!event.resumed,
        state: "running" };
      model.armed = null;
    } else if (boot.swap) {
      boot.swap.done = event.ops_done ?? boot.swap.done;
      boot.swap.total = event.ops_total ?? boot.swap.total;
      if (event.sector !== undefined) boot.swap.sector = event.sector;
      if (event.phase === "done") boot.swap.state = "done";
    }
    boot.phase = "swap";
    mark("boot");
  },
  image(event) {
    const boot = currentBoot();
    if (boot && event.phase !== "valid") {
      boot.notes.push(event.phase === "erased" ? `slot ${event.slot} erased`
        : `slot ${event.slot} not valid: ${event.reason}`);
      mark("boot");
    }
  },
  app(event) {
    const boot = currentBoot();
    if (!boot) return;
    if (event.phase === "fault") {
      const what = { crash: "the application crashes", hang: "the application hangs" }[event.boot];
      boot.notes.push(`injected fault: ${what || "the application does not confirm itself"}`);
    }
    else boot.app = { running: "running", crash: "crashed", hang: "hung" }[event.phase] || event.phase;
    mark("boot");
  },
  fault(event) { refreshFaults(); noteArmed(event); },
  flash(event) {
    const flash = model.flash;
    for (const [index, kind] of Object.entries(event.sectors || {})) {
      flashes.set(Number(index), kind);
      const sector = flash && flash.sectors[Number(index)];
      if (sector) {
        if (kind === "erase") { sector.state = "erased"; sector.erase_count++; }
        else if (sector.state === "erased") sector.state = "partly";
      }
    }
    mark("flash");
    refreshFlash();
  },
};

function currentBoot() { return model.boots[model.boots.length - 1]; }

function noteArmed(event) {
  if (event.at_swap_percent !== undefined) model.armed = `power cut armed at ${event.at_swap_percent} % of the next swap`;
  else if (event.before_op !== undefined) model.armed = `power cut armed before flash operation ${event.before_op}`;
  else if (event.what && String(event.what).startsWith("power cut armed")) model.armed = event.what;
  else return;
  mark("boot");
}

function smpEvent(event) {
  const key = `${event.medium}|${event.peer}|${event.smp_seq}|${event.group}|${event.cmd}`;
  const body = event.body || {};
  if (event.dir === "request") {
    const row = { uptime: event.uptime_s, peer: `${event.medium} ${event.peer || ""}`,
      what: `${event.group_name} ${commandName(event)} ${event.op === "read" ? "read" : "write"}`,
      ask: summary(event, body), rc: null, answer: "…" };
    model.smp.push(row);
    model.smpOpen.set(key, row);
    if (model.smp.length > KEEP_SMP) model.smp.shift();
    if (model.smpOpen.size > 64) model.smpOpen.delete(model.smpOpen.keys().next().value);
    if (event.group_name === "img" && event.cmd === 1 && typeof body.off === "number") {
      if (body.off === 0 && typeof body.len === "number") {
        model.upload = { image: body.image || 0, len: body.len, off: 0 };
      }
    }
  } else {
    const row = model.smpOpen.get(key);
    model.smpOpen.delete(key);
    if (row) {
      row.rc = event.rc ?? 0;
      row.rcGroup = event.rc_group;
      row.answer = summary(event, body);
    }
    if (event.group_name === "img") {
      if (event.cmd === 1 && typeof body.off === "number") {
        // The first chunk (with the length) may have been skipped in a flood.
        model.upload = model.upload || { image: 0, len: 0, off: 0 };
        model.upload.off = body.off;
        if (model.upload.len && body.off >= model.upload.len) {
          model.upload = null; refreshSlots(); refreshFlash();
        } else if (!model.upload.len) {
          refreshSlots();
        }
        mark("slots");
      } else {
        refreshSlots();
      }
    }
  }
  markSlowly("smp", SMP_TABLE_MS);
}

function setCell(td, text, cls) {
  if (td.textContent !== text) { td.textContent = text; td.title = text; }
  if (td.className !== cls) td.className = cls;
}

function commandName(event) {
  const names = COMMANDS[event.group_name];
  return (names && names[event.cmd]) || `cmd ${event.cmd}`;
}

function bytesOf(value) {
  if (!value || typeof value.hex !== "string") return 0;
  return value.len ?? value.hex.length / 2;
}

function summary(event, body) {
  const group = event.group_name, cmd = event.cmd;
  if (group === "img" && cmd === 1) {
    if (event.dir === "request") return `off ${body.off}${body.len !== undefined ? ` of ${body.len}` : ""} +${bytesOf(body.data)} B`;
    return body.off !== undefined ? `off ${body.off}` : "";
  }
  if (group === "img" && cmd === 0) {
    if (Array.isArray(body.images)) {
      return body.images.map((image) => `${image.slot}: ${image.version} ${
        ["pending", "confirmed", "active", "permanent"].filter((f) => image[f]).map((f) => f[0].toUpperCase()).join("")
      }`).join(", ");
    }
    if (event.dir === "request" && event.op === "write") {
      return body.confirm ? `confirm${body.hash ? " " + body.hash.hex.slice(0, 8) : ""}`
        : `test ${body.hash ? body.hash.hex.slice(0, 8) : ""}`;
    }
  }
  if (group === "os" && cmd === 0 && typeof body.d === "string") return JSON.stringify(body.d.slice(0, 40));
  if (group === "os" && cmd === 0 && typeof body.r === "string") return JSON.stringify(body.r.slice(0, 40));
  const text = JSON.stringify(body);
  return text === "{}" ? "" : text.slice(0, 120);
}

// -- the console -------------------------------------------------------------------------------
async function loadConsole() {
  const answer = await api(`${API}/console?since=${model.consoleIndex}`, { cache: "no-store" });
  if (!answer.ok) return;
  for (const entry of await answer.json()) {
    if (entry.index <= model.consoleIndex) continue;
    model.consoleIndex = entry.index;
    model.lines.push(entry.line);
  }
  mark("console");
}

// A log line as a UART backend with colours writes it (the control plane gives plain text).
function zephyrColours(line) {
  if (line.includes("\x1b[")) return line;
  const match = ZEPHYR_LOG.exec(line);
  if (!match) return line;
  return `${match[1]}${LOG_COLOUR[match[2]]}${line.slice(match[1].length)}\x1b[0m`;
}

// ANSI SGR (bold, 30-37, 90-97, reset) to spans; everything else is text.
function ansiLine(line) {
  const out = document.createElement("div");
  let bold = false, colour = 0, last = 0;
  const sgr = /\x1b\[([0-9;]*)m/g;
  const put = (text) => {
    if (!text) return;
    if (!bold && !colour) { out.append(text); return; }
    const span = document.createElement("span");
    span.className = `${bold ? "b " : ""}${colour ? "c" + colour : ""}`;
    span.textContent = text;
    out.append(span);
  };
  for (let match; (match = sgr.exec(line));) {
    put(line.slice(last, match.index));
    last = sgr.lastIndex;
    for (const code of (match[1] || "0").split(";").map(Number)) {
      if (code === 0) { bold = false; colour = 0; }
      else if (code === 1) bold = true;
      else if (code === 22) bold = false;
      else if (code === 39) colour = 0;
      else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) colour = code;
    }
  }
  put(line.slice(last));
  return out;
}

// -- drawing -----------------------------------------------------------------------------------
const DRAW = {
  status() {
    const board = model.board;
    if (!board) return;
    $("#profile").textContent = `${board.profile} · ${board.board}`;
    $("#status").dataset.state = board.state;
    $("#st-state").textContent = board.state;
    $("#st-boots").textContent = board.boot_count;
    $("#st-firmware").textContent = board.firmware.version || "-";
    $("#st-scale").textContent = board.time_scale === 0 ? "0 (instant)" : `${board.time_scale}`;
    const select = $("#time-scale");
    if (document.activeElement !== select) select.value = String(board.time_scale);
    const ble = board.endpoints.some((endpoint) => endpoint.medium === "BLE");
    $("[data-action=ble-disconnect]").hidden = !ble;
    drawUptime();
  },
  slots: drawSlots,
  boot: drawBoot,
  flash: drawFlash,
  console() {
    const pane = $("#console");
    const atBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 30;
    const fresh = model.lines.splice(0);
    const fragment = document.createDocumentFragment();
    for (const line of fresh.slice(-KEEP_LINES)) fragment.append(ansiLine(zephyrColours(line)));
    pane.append(fragment);
    while (pane.childElementCount > KEEP_LINES) pane.firstElementChild.remove();
    if (atBottom) pane.scrollTop = pane.scrollHeight;
  },
  smp() {
    // The same rows, their texts changed: in a flood the table is redrawn four times a
    // second, and new elements each time would cost the browser more than the board.
    const rows = model.smp.slice(-KEEP_SMP).reverse();
    const body = $("#smp tbody");
    while (body.rows.length < rows.length) {
      const tr = body.insertRow();
      for (let cell = 0; cell < 5; cell++) tr.insertCell();
    }
    while (body.rows.length > rows.length) body.deleteRow(-1);
    rows.forEach((row, index) => {
      const rc = row.rc === null ? "…" : row.rc === 0 ? "0" :
        row.rcGroup !== undefined ? `${row.rc} (group ${row.rcGroup})` : `${row.rc} ${MGMT_ERR[row.rc] || ""}`;
      const rcClass = row.rc === null ? "rc-none" : row.rc === 0 ? "rc-ok" : "rc-bad";
      const cells = body.rows[index].cells;
      [[row.uptime.toFixed(3), ""], [row.peer, ""], [`${row.what} ${row.ask}`, ""], [rc, rcClass],
        [row.answer, ""]].forEach(([text, cls], cell) => setCell(cells[cell], text, cls));
    });
  },
  faults() {
    const items = model.faults.filter((fault) => fault.active).map((fault) => {
      const li = document.createElement("li");
      li.dataset.active = fault.active;
      li.textContent = `${fault.id} ${fault.family} ${fault.kind}${fault.hits ? ` (${fault.hits} hits)` : ""}`;
      const clear = document.createElement("button");
      clear.type = "button"; clear.textContent = "✕"; clear.title = "clear this fault";
      clear.addEventListener("click", () => send("DELETE", `${API}/faults/${fault.id}`, null, `cleared ${fault.id}`));
      li.append(clear);
      return li;
    });
    $("#faults").replaceChildren(...items);
  },
};

function drawUptime() {
  const board = model.board;
  if (!board) return;
  let text = "-";
  if (board.state === "online" && board.uptime_s !== null) {
    const scale = board.time_scale;
    const passed = scale > 0 ? (performance.now() - model.boardAt) / 1000 / scale : 0;
    text = clock(board.uptime_s + passed);
  }
  $("#st-uptime").textContent = text;
}

function clock(seconds) {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
  return `${h ? h + ":" : ""}${String(m).padStart(h ? 2 : 1, "0")}:${String(s % 60).padStart(2, "0")}`;
}

function element(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Cards are made once per slot and updated in place, so a change can be animated.
const cards = new Map();

function drawSlots() {
  const holder = $("#slots");
  const seen = new Set();
  for (const slot of model.slots) {
    const key = `${slot.image}/${slot.slot}`;
    seen.add(key);
    let card = cards.get(key);
    if (!card) {
      card = element("article", "slot");
      card.dataset.image = slot.image; card.dataset.slot = slot.slot;
      card.append(element("div", "where"), element("div", "version"), element("div", "hash"),
        element("ul", "flags"), element("div", "validity"), element("div", "trailer"),
        element("div", "upload"));
      const flags = card.querySelector(".flags");
      for (const flag of FLAGS) { const li = element("li", "", flag); li.dataset.flag = flag; flags.append(li); }
      card.querySelector(".upload").append(element("div", "meter"), element("span"));
      card.querySelector(".upload .meter").append(element("div"));
      cards.set(key, card);
      holder.append(card);
    }
    fillCard(card, slot);
  }
  for (const [key, card] of cards) {
    if (!seen.has(key)) { card.remove(); cards.delete(key); }
  }
}

function fillCard(card, slot) {
  const on = { ...slot.flags, bootable: !!slot.bootable };
  const flagText = FLAGS.filter((flag) => on[flag]).join(" ");
  const signature = `${slot.present}|${slot.version}|${slot.hash}|${flagText}|${slot.valid}`;
  const changed = card.dataset.signature !== undefined && card.dataset.signature !== signature;
  card.dataset.signature = signature;
  card.dataset.present = slot.present;
  card.dataset.version = slot.present ? slot.version : "";
  card.dataset.hash = slot.present ? slot.hash : "";
  card.dataset.flags = flagText;
  card.dataset.active = !!on.active;
  card.dataset.valid = slot.present ? slot.valid : "";
  card.querySelector(".where").textContent =
    `image ${slot.image} · slot ${slot.slot} (${slot.slot === 0 ? "primary" : "secondary"}) · ${slot.partition}`;
  card.querySelector(".version").textContent = slot.present ? slot.version : "empty";
  card.querySelector(".hash").textContent = slot.present
    ? `${slot.hash.slice(0, 8)} · ${(slot.size / 1024).toFixed(1)} KiB` : slot.problem || "";
  for (const li of card.querySelectorAll(".flags li")) {
    const was = li.classList.contains("on");
    li.classList.toggle("on", !!on[li.dataset.flag]);
    if (!was && on[li.dataset.flag] && changed) pop(li);
  }
  card.querySelector(".validity").textContent = !slot.present ? "" :
    slot.valid ? `valid${slot.validity && slot.validity !== "ok" ? ` (${slot.validity})` : ""}`
      : `not valid: ${slot.validity}`;
  const t = slot.trailer;
  card.querySelector(".trailer").textContent =
    `trailer: magic ${t.magic}, swap ${t.swap_type}, copy_done ${t.copy_done}, image_ok ${t.image_ok}`;
  const upload = card.querySelector(".upload");
  const up = model.upload;
  const receiving = up && slot.slot === 1 && slot.image === up.image;
  upload.hidden = !receiving;
  card.dataset.upload = receiving && up.len ? Math.floor(100 * up.off / up.len) : "";
  if (receiving) {
    upload.querySelector(".meter div").style.width = up.len ? `${100 * up.off / up.len}%` : "0";
    upload.querySelector("span").textContent = `receiving ${up.off}${up.len ? ` of ${up.len}` : ""} bytes`;
  }
  if (changed) pop(card);
}

function pop(node) {
  node.animate([{ transform: "scale(1.06)", boxShadow: "0 0 0 4px #ffd166" },
    { transform: "scale(1)", boxShadow: "0 0 0 0 transparent" }], { duration: 700, easing: "ease-out" });
}

function drawBoot() {
  const boot = currentBoot();
  const panel = $("#boot");
  const armed = $("#armed");
  armed.hidden = !model.armed;
  armed.textContent = model.armed || "";
  if (!boot) return;
  panel.dataset.phase = boot.phase;
  panel.dataset.swapType = boot.swapType;
  const phase = {
    start: "MCUboot starts", decided: `MCUboot: swap type ${boot.swapType}`,
    swap: `MCUboot: swapping (${boot.swapType})`, jump: `MCUboot jumped to ${boot.version}`,
    no_image: "MCUboot: no bootable image",
  }[boot.phase] || boot.phase;
  $("#boot-phase").textContent = `boot ${boot.boot}: ${phase}`;
  const swap = boot.swap;
  const box = $("#swap");
  if (swap) {
    const cut = boot.power === "off" && swap.state !== "done";
    box.dataset.state = cut ? "cut" : swap.state;
    box.dataset.opsDone = swap.done;
    box.dataset.opsTotal = swap.total;
    box.dataset.sector = swap.sector ?? "";
    $("#swap-bar").style.width = `${swap.total ? Math.min(100, 100 * swap.done / swap.total) : 0}%`;
    $("#swap-text").textContent = `${swap.resumed ? "resumed swap" : "swap"}: ${swap.done} / ${swap.total} operations` +
      `${swap.sector !== null ? `, sector ${swap.sector}` : ""}${cut ? " — power cut" : ""}`;
  } else {
    box.dataset.state = "idle"; box.dataset.opsDone = 0; box.dataset.opsTotal = 0;
    $("#swap-bar").style.width = "0";
    $("#swap-text").textContent = "no swap at this boot";
  }
  const outcome = $("#boot-outcome");
  const result = bootResult(boot);
  outcome.dataset.outcome = result.kind;
  outcome.textContent = result.text;
  const items = model.boots.slice().reverse().map((entry) => {
    const li = element("li", "", `${bootResult(entry).text || entry.phase}` +
      `${entry.swapType && entry.swapType !== "none" ? ` · swap ${entry.swapType}` : ""}` +
      `${entry.swap ? ` ${entry.swap.done}/${entry.swap.total}` : ""}` +
      `${entry.notes.length ? ` · ${entry.notes.join("; ")}` : ""}`);
    li.value = entry.boot;
    li.dataset.outcome = entry.outcome; li.dataset.app = entry.app;
    li.dataset.swapType = entry.swapType; li.dataset.version = entry.version;
    return li;
  });
  $("#boots").replaceChildren(...items);
}

function bootResult(boot) {
  if (boot.power === "off" && !boot.outcome) return { kind: "off", text: "power lost during the boot" };
  if (boot.outcome === "halted") return { kind: "halted", text: "no bootable image: halted" };
  if (!boot.outcome) return { kind: "", text: "" };
  if (boot.app === "crashed") return { kind: "crashed", text: `${boot.version} crashed; the board resets` };
  if (boot.app === "hung") return { kind: "crashed", text: `${boot.version} hung; the watchdog resets` };
  if (boot.outcome === "reverted") return { kind: "reverted", text: `reverted to ${boot.version}` };
  const how = boot.swapType === "test" ? " (test)" : boot.swapType === "perm" ? " (permanent)" : "";
  return { kind: "jumped", text: `jumped to ${boot.version}${how}` };
}

// The flash map: one row per partition, one cell per sector, widths to scale (grid columns of
// the smallest sector's size).
let flashCells = [];
let flashShape = "";

function drawFlash() {
  const flash = model.flash;
  if (!flash) return;
  const shape = flash.partitions.map((p) => `${p.name}@${p.offset}+${p.size}`).join() + `|${flash.sectors.length}`;
  if (shape !== flashShape) buildFlash(flash, shape);
  for (const sector of flash.sectors) {
    const cell = flashCells[sector.index];
    if (!cell) continue;
    const kind = sectorKind(sector.holds);
    const cls = `sec k-${kind} st-${sector.state}`;
    if (cell.className !== cls) cell.className = cls;
    cell.dataset.erases = sector.erase_count;
    cell.title = `sector ${sector.index} at 0x${sector.offset.toString(16).padStart(6, "0")}, ` +
      `${sector.size / 1024} KiB, ${sector.state}\nholds: ${sector.holds.join(", ") || "nothing"}\n` +
      `erased ${sector.erase_count} times`;
  }
  for (const [index, kind] of flashes) {
    const cell = flashCells[index];
    if (!cell) continue;
    cell.animate(kind === "erase"
      ? [{ background: "#fff", outline: "2px solid #c0392b" }, {}]
      : [{ background: "#ffe066", outline: "2px solid #b08900" }, {}], { duration: 600 });
  }
  flashes.clear();
  const erases = flash.sectors.reduce((sum, s) => sum + s.erase_count, 0);
  $("#flash-summary").textContent =
    `${(flash.size / 1024).toFixed(0)} KiB, ${flash.sectors.length} sectors, ${flash.ops} operations, ${erases} erases`;
}

function sectorKind(holds) {
  const has = (what) => holds.includes(what);
  if (has("bootloader")) return "boot";
  if (has("image header")) return "hdr";
  if (has("TLVs")) return "tlv";
  if (has("image body")) return "img";
  if (has("trailer") || has("swap status")) return "trailer";
  if (has("littlefs")) return "fs";
  if (has("settings")) return "settings";
  if (has("swap scratch")) return "scratch";
  return "free";
}

function buildFlash(flash, shape) {
  flashShape = shape;
  flashCells = [];
  const unit = Math.min(...flash.sectors.map((s) => s.size));
  const largest = Math.max(...flash.partitions.map((p) => p.size), unit);
  const columns = Math.max(1, Math.min(Math.round(largest / unit), 128));
  const rows = [];
  const parts = [...flash.partitions].sort((a, b) => a.offset - b.offset);
  let part = null, row = null;
  for (const sector of flash.sectors) {
    const owner = parts.find((p) => sector.offset >= p.offset && sector.offset < p.offset + p.size) || null;
    if (!row || owner !== part) {
      part = owner;
      row = { part: owner, sectors: [] };
      rows.push(row);
    }
    row.sectors.push(sector);
  }
  const nodes = rows.map(({ part: owner, sectors }) => {
    const box = element("div", "part");
    const size = sectors.reduce((sum, s) => sum + s.size, 0);
    const label = element("div", "label");
    label.append(element("b", "", owner ? owner.name : "no partition"),
      element("span", "", `0x${sectors[0].offset.toString(16)} · ${size / 1024} KiB`));
    if (owner) label.append(document.createElement("br"), element("span", "", owner.holds));
    box.dataset.partition = owner ? owner.name : "";
    if (owner && owner.holds.includes("secondary")) box.classList.add("secondary");
    const grid = element("div", "sectors");
    grid.style.gridTemplateColumns = `repeat(${columns}, minmax(0, 1fr))`;
    for (const sector of sectors) {
      const cell = element("i", "sec");
      cell.dataset.index = sector.index;
      cell.style.gridColumn = `span ${Math.min(columns, Math.max(1, Math.round(sector.size / unit)))}`;
      flashCells[sector.index] = cell;
      grid.append(cell);
    }
    box.append(label, grid);
    return box;
  });
  $("#flash").replaceChildren(...nodes);
}

// -- actions -----------------------------------------------------------------------------------
async function send(method, path, body, done) {
  const said = $("#said");
  said.className = "";
  said.textContent = `${method} ${path}…`;
  try {
    const answer = await api(path, {
      method, headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const reply = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new Error(reply.error || `HTTP ${answer.status}`);
    said.textContent = done(reply);
  } catch (error) {
    said.className = "bad";
    said.textContent = `${path}: ${error.message}`;
  }
  refreshFaults(); refreshBoard();
}

function act(name, body, what) {
  return send("POST", `${API}/actions/${name}`, body, (reply) => `${what}: board ${reply.state}`);
}

function onAction(button) {
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  const name = button.dataset.action;
  if (name === "power-cut-swap") {
    const percent = Number($("#cut-percent").value);
    return act("power-cut", { at_swap_percent: percent }, `power cut armed at ${percent} %`);
  }
  return act(name, {}, button.textContent.trim());
}

function onFault(button) {
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  const spec = button.dataset.fault === "deaf"
    ? { family: "link", kind: "deaf", count: 1, duration_s: Number($("#deaf-seconds").value) }
    : { family: "app", kind: button.dataset.fault };
  return send("POST", `${API}/faults`, spec, (fault) => `fault ${fault.id} added: ${fault.family} ${fault.kind}`);
}

function setLarge(large) {
  document.documentElement.classList.toggle("large", large);
  $("#large").setAttribute("aria-pressed", String(large));
  try { localStorage.setItem("smpsim.large", large ? "1" : ""); } catch (error) { /* private mode */ }
}

function start() {
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => onAction(button));
  }
  for (const button of document.querySelectorAll("[data-fault]")) {
    button.addEventListener("click", () => onFault(button));
  }
  $("#time-scale").addEventListener("change", (event) => {
    const scale = Number(event.target.value);
    act("time-scale", { scale }, `time scale ${scale}`);
  });
  let large = new URLSearchParams(location.search).get("large") === "1";
  try { large = large || localStorage.getItem("smpsim.large") === "1"; } catch (error) { /* private mode */ }
  setLarge(large);
  $("#large").addEventListener("click", () => setLarge(!document.documentElement.classList.contains("large")));
  setInterval(drawUptime, 1000);
  // The console's kept lines first, then the stream (whose history may repeat a few of them).
  loadConsole().catch(() => {}).finally(connect);
}

start();
