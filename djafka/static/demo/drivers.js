// The drivers demo page: drivers' positions from the live feed (/ws/v1/live), drawn moving on a
// map of the city (djafka/drivers.py's CITY, handed over in #drivers-config) and counted per
// district. The map is drawn here on a <canvas>: streets, district borders and names, drivers.
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("drivers-config").textContent);
  const city = config.city;
  const $ = (id) => document.getElementById(id);

  const ACTIVE_MS = 10_000;       // a driver is active if it reported this recently, not offline
  const BACKFILL_MS = 10_000;     // on (re)connect, start this far back: the map fills at once
  const RETRY_MS = 3_000;         // topic missing, or socket closed: try again after this
  const TRAIL_MS = 15_000;        // how far back a driver's trail reaches
  const COLORS = {
    available: "#34d399", on_trip: "#f472b6", offline: "#94a3b8",
  };
  const GLOW = { available: "rgba(52, 211, 153, 0.2)", on_trip: "rgba(244, 114, 182, 0.22)" };
  const TRAIL = { available: "rgba(52, 211, 153, 0.6)", on_trip: "rgba(244, 114, 182, 0.6)" };

  // --- State --------------------------------------------------------------------------------

  const drivers = new Map();      // driver id -> its latest update, display motion and trail
  const arrivals = [];            // performance.now() of each record, for updates/s
  const ages = [];                // Date.now() - record timestamp at arrival, recent records
  let received = 0, skipped = 0;
  let ws = null, subscriptionId = null, subscriptionSeq = 0, retryTimer = null;
  let quietTimer = null;
  let counts = emptyCounts();
  let hover = null, highlighted = null;

  function emptyCounts() {
    const byDistrict = {};
    for (const d of city.districts) byDistrict[d.name] = { active: 0, available: 0, on_trip: 0 };
    return { byDistrict, active: 0, available: 0, on_trip: 0, offline: 0, maxActive: 0 };
  }

  // --- The live feed ------------------------------------------------------------------------

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = config.is_operator ? "?tenant=" + encodeURIComponent(config.tenant) : "";
    return scheme + "://" + location.host + "/ws/v1/live" + query;
  }

  function setStatus(text, kind) {
    const pill = $("status");
    pill.textContent = text;
    pill.className = "pill " + kind;
  }

  function showHint(why) {
    if (why) $("hint-why").textContent = why;
    $("hint").hidden = !why;
  }

  function connect() {
    clearTimeout(retryTimer);
    setStatus("connecting", "");
    ws = new WebSocket(socketUrl());
    ws.onopen = () => subscribe();
    ws.onmessage = (event) => onFrame(JSON.parse(event.data));
    ws.onclose = (event) => {
      ws = null;
      subscriptionId = null;
      if (event.code === 4401 || event.code === 4403) {
        setStatus("not allowed: " + event.reason, "down");
        return;  // retrying would be refused the same way
      }
      setStatus("reconnecting", "down");
      retryTimer = setTimeout(connect, RETRY_MS);
    };
  }

  function subscribe() {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    subscriptionId = "drivers-" + (++subscriptionSeq);
    // From a few seconds back rather than "latest": drivers show at once, not after a second.
    ws.send(JSON.stringify({
      action: "subscribe", id: subscriptionId, topic: config.topic,
      from: { timestamp: Date.now() - BACKFILL_MS },
    }));
    setStatus("subscribing", "");
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "records":  // a batch of records per frame (the feed sends no other kind)
        if (frame.subscription === subscriptionId) for (const record of frame.records) onRecord(record);
        break;
      case "subscribed":
        if (frame.subscription !== subscriptionId) break;
        setStatus("live", "live");
        clearTimeout(quietTimer);
        quietTimer = setTimeout(() => {
          if (!drivers.size) showHint("has had no records in the last 10 s");
        }, 5_000);
        break;
      case "skipped":
        if (frame.subscription === subscriptionId) skipped += frame.to_offset - frame.from_offset + 1;
        break;
      case "error":
        if (frame.subscription === subscriptionId && frame.partition === undefined) {
          // The topic does not exist (yet), or was deleted: say how to start the demo, and
          // try again.
          setStatus("waiting for topic", "waiting");
          showHint(isMissingTopic(frame) ? "does not exist yet" : frame.message);
          subscriptionId = null;
          retryTimer = setTimeout(subscribe, RETRY_MS);
        }
        break;
      default:
        break;
    }
  }

  // Error frames carry no machine-readable code (brokers/live/protocol.py: only subscription,
  // message and, for one partition's error, partition), so a missing topic is told by the
  // server's English message (brokers/live/consumers.py, _subscribe). Kept to this one place:
  // change it here if the feed gains an error code.
  function isMissingTopic(frame) {
    return /does not exist/.test(frame.message);
  }

  function isInCity(x, y) {
    return x >= 0 && x <= city.width_m && y >= 0 && y <= city.height_m;
  }

  function readValue(record) {
    let value = record.value;
    if (typeof value === "string") {
      try { value = JSON.parse(value); } catch { return null; }
    }
    if (!value || typeof value.driver_id !== "string" || !Number.isFinite(value.x_m)
        || !Number.isFinite(value.y_m)) return null;
    if (!isInCity(value.x_m, value.y_m)) return null;  // no district counts it, nowhere to draw
    return value;
  }

  function onRecord(record) {
    const value = readValue(record);
    received++;
    arrivals.push(performance.now());
    if (!value) return;  // not a driver location: counted as received, not drawn
    const ts = Number.isFinite(value.ts_ms) ? value.ts_ms : record.timestamp;
    ages.push(Date.now() - ts);
    if (ages.length > 2000) ages.splice(0, ages.length - 2000);
    const now = performance.now();
    let d = drivers.get(value.driver_id);
    if (!d) {
      d = { id: value.driver_id, x: value.x_m, y: value.y_m, fromX: value.x_m, fromY: value.y_m,
            t0: now, duration: 1, ts: ts, trail: [] };
      drivers.set(d.id, d);
    } else {
      if (ts < d.ts) return;  // older than what is shown (a backfill overlapping the live feed)
      // Glide from where it is drawn now to the new position over about one update interval.
      const [x, y] = displayed(d, now);
      d.trail.push({ x: d.x, y: d.y, ts: d.ts });
      d.fromX = x; d.fromY = y; d.t0 = now;
      d.duration = Math.min(2000, Math.max(80, ts - d.ts));
      d.x = value.x_m; d.y = value.y_m; d.ts = ts;
    }
    d.status = COLORS[value.status] ? value.status : "available";
    d.heading = Number(value.heading_deg) || 0;
    d.speed = Number(value.speed_kmh) || 0;
    d.district = value.district;
    d.partition = record.partition;
    d.offset = record.offset;
    showHint(null);
    clearTimeout(quietTimer);
  }

  // --- Who is where -------------------------------------------------------------------------

  function ageOf(d) { return Math.max(0, Date.now() - d.ts); }
  function isActive(d) { return d.status !== "offline" && ageOf(d) <= ACTIVE_MS; }

  function districtOf(x, y) {
    // As djafka/drivers.py: a border belongs to the district east or south of it.
    const size = city.width_m / city.columns;
    const clamp = (n, last) => Math.max(0, Math.min(n, last));
    const column = clamp(Math.floor(x / size), city.columns - 1);
    const row = clamp(Math.floor(y / size), city.rows - 1);
    return city.districts[row * city.columns + column];
  }

  function recount() {
    const c = emptyCounts();
    for (const [id, d] of drivers) {
      if (ageOf(d) > ACTIVE_MS) { drivers.delete(id); continue; }  // gone quiet: off the map
      if (d.status === "offline") { c.offline++; continue; }
      const name = Object.hasOwn(c.byDistrict, d.district) ? d.district : districtOf(d.x, d.y).name;
      const row = c.byDistrict[name];
      row.active++; c.active++;
      if (d.status === "on_trip") { row.on_trip++; c.on_trip++; } else { row.available++; c.available++; }
    }
    for (const name in c.byDistrict) c.maxActive = Math.max(c.maxActive, c.byDistrict[name].active);
    counts = c;
  }

  // --- The district table and the numbers ---------------------------------------------------

  const rows = new Map();
  function buildTable() {
    const tbody = document.querySelector("#districts tbody");
    for (const d of city.districts) {
      const tr = tbody.insertRow();
      tr.dataset.district = d.name;
      tr.insertCell().textContent = d.name;
      const cells = [tr.insertCell(), tr.insertCell(), tr.insertCell()];
      for (const td of cells) td.className = "num";
      const bar = tr.insertCell();
      bar.className = "bar-cell";
      bar.innerHTML = '<div class="meter"><span style="width:0"></span></div>';
      rows.set(d.name, { active: cells[0], available: cells[1], on_trip: cells[2], meter: bar.querySelector("span") });
      tr.addEventListener("mouseenter", () => { highlighted = d; });
      tr.addEventListener("mouseleave", () => { highlighted = null; });
    }
  }

  function setNumber(cell, n) {
    const text = n.toLocaleString();
    if (cell.textContent !== text) cell.textContent = text;
    cell.classList.toggle("zero", n === 0);
  }

  function updateNumbers() {
    recount();
    const now = performance.now();
    while (arrivals.length && arrivals[0] < now - 1000) arrivals.shift();
    for (const [name, cells] of rows) {
      const c = counts.byDistrict[name];
      setNumber(cells.active, c.active);
      setNumber(cells.available, c.available);
      setNumber(cells.on_trip, c.on_trip);
      cells.meter.style.width = (counts.maxActive ? (100 * c.active) / counts.maxActive : 0) + "%";
    }
    setNumber($("foot-active"), counts.active);
    setNumber($("foot-available"), counts.available);
    setNumber($("foot-trip"), counts.on_trip);
    $("total-active").textContent = counts.active.toLocaleString();
    $("total-available").textContent = counts.available.toLocaleString();
    $("total-trip").textContent = counts.on_trip.toLocaleString();
    $("rate").textContent = $("rate-big").textContent = arrivals.length.toLocaleString();
    $("received").textContent = received.toLocaleString();
    $("skipped").textContent = skipped.toLocaleString();
    $("offline-note").textContent = counts.offline ? counts.offline + " offline" : "";
    if (ages.length) {
      const recent = ages.slice(-200).sort((a, b) => a - b);
      const median = recent[recent.length >> 1];
      $("latency").textContent = median < 1000 ? Math.max(0, median) + " ms" : (median / 1000).toFixed(1) + " s";
    }
  }

  // --- The map ------------------------------------------------------------------------------

  const canvas = $("city");
  const ctx = canvas.getContext("2d");
  const background = document.createElement("canvas");
  let view = { width: 0, height: 0, scale: 1, ox: 0, oy: 0, dpr: 1 };

  const X = (x) => view.ox + x * view.scale;
  const Y = (y) => view.oy + y * view.scale;

  function resize() {
    // As large as the column, but all of it in the window below the page's header.
    const margin = 12;
    const width = canvas.parentElement.clientWidth;
    const top = canvas.getBoundingClientRect().top + window.scrollY;
    const maxHeight = Math.max(380, window.innerHeight - top - 16);
    const height = Math.min(maxHeight, Math.round((width - 2 * margin) * (city.height_m / city.width_m)) + 2 * margin);
    const dpr = window.devicePixelRatio || 1;
    canvas.style.height = height + "px";
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    background.width = canvas.width;
    background.height = canvas.height;
    const scale = Math.min((width - 2 * margin) / city.width_m, (height - 2 * margin) / city.height_m);
    view = {
      width, height, scale, dpr,
      ox: (width - city.width_m * scale) / 2, oy: (height - city.height_m * scale) / 2,
    };
    drawBackground();
    const ruleM = niceScale(70 / scale);
    $("scale-rule").style.width = Math.round(ruleM * scale) + "px";
    $("scale-label").textContent = ruleM >= 1000 ? ruleM / 1000 + " km" : ruleM + " m";
  }

  function niceScale(metres) {
    for (const step of [100, 200, 500, 1000, 2000, 5000]) if (step >= metres) return step;
    return 5000;
  }

  function drawBackground() {
    const g = background.getContext("2d");
    g.setTransform(view.dpr, 0, 0, view.dpr, 0, 0);
    g.fillStyle = "#0b1220";
    g.fillRect(0, 0, view.width, view.height);
    // Districts in a faint checkerboard, so each reads as an area.
    for (const d of city.districts) {
      g.fillStyle = (d.column + d.row) % 2 ? "#0f1a2e" : "#111e36";
      g.fillRect(X(d.x0), Y(d.y0), (d.x1 - d.x0) * view.scale, (d.y1 - d.y0) * view.scale);
    }
    // Streets every block; district borders are the avenues.
    const size = city.width_m / city.columns;
    const line = (x0, y0, x1, y1) => { g.beginPath(); g.moveTo(x0, y0); g.lineTo(x1, y1); g.stroke(); };
    g.lineCap = "square";
    for (const avenue of [false, true]) {
      g.strokeStyle = avenue ? "#2c3d63" : "#1d2b47";
      g.lineWidth = avenue ? Math.max(2.5, view.scale * 22) : Math.max(1, view.scale * 9);
      for (let x = 0; x <= city.width_m + 1e-6; x += city.block_m) {
        const isAvenue = Math.abs(x / size - Math.round(x / size)) < 1e-9;
        if (isAvenue === avenue) line(X(x), Y(0), X(x), Y(city.height_m));
      }
      for (let y = 0; y <= city.height_m + 1e-6; y += city.block_m) {
        const isAvenue = Math.abs(y / size - Math.round(y / size)) < 1e-9;
        if (isAvenue === avenue) line(X(0), Y(y), X(city.width_m), Y(y));
      }
    }
    // Intersections of avenues, as small plazas.
    g.fillStyle = "#34466f";
    for (let c = 0; c <= city.columns; c++) {
      for (let r = 0; r <= city.rows; r++) {
        g.beginPath();
        g.arc(X(c * size), Y(r * size), Math.max(2, view.scale * 26), 0, Math.PI * 2);
        g.fill();
      }
    }
  }

  function displayed(d, now) {
    const t = Math.min(1, (now - d.t0) / d.duration);
    const e = t * (2 - t) * 0.35 + t * 0.65;  // mostly linear, easing a little into the stop
    return [d.fromX + (d.x - d.fromX) * e, d.fromY + (d.y - d.fromY) * e];
  }

  function drawDistricts() {
    const size = city.width_m / city.columns;
    for (const d of city.districts) {
      const c = counts.byDistrict[d.name];
      const share = counts.maxActive ? c.active / counts.maxActive : 0;
      if (share > 0) {  // busier districts glow a little
        ctx.fillStyle = "rgba(99, 102, 241, " + (0.03 + 0.11 * share).toFixed(3) + ")";
        ctx.fillRect(X(d.x0), Y(d.y0), size * view.scale, size * view.scale);
      }
      if (highlighted && highlighted.name === d.name) {
        ctx.strokeStyle = "rgba(165, 180, 252, 0.9)";
        ctx.lineWidth = 2;
        ctx.strokeRect(X(d.x0) + 1, Y(d.y0) + 1, size * view.scale - 2, size * view.scale - 2);
      }
      const px = X(d.x0) + 10, py = Y(d.y0) + 10;
      const small = Math.max(10, Math.min(12, view.scale * 70));
      ctx.textBaseline = "top";
      ctx.font = "600 " + small + "px system-ui, -apple-system, 'Segoe UI', sans-serif";
      ctx.fillStyle = "rgba(148, 163, 184, 0.85)";
      ctx.fillText(d.name.toUpperCase().split("").join(String.fromCharCode(8202)), px, py);
      ctx.font = "700 " + (small + 6) + "px system-ui, -apple-system, 'Segoe UI', sans-serif";
      ctx.fillStyle = c.active ? "rgba(226, 232, 240, 0.92)" : "rgba(100, 116, 139, 0.7)";
      ctx.fillText(String(c.active), px, py + small + 4);
    }
  }

  function drawDrivers(now) {
    const wall = Date.now();
    const radius = Math.max(2.5, Math.min(4, view.scale * 20));
    // Trails first, under every driver.
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const d of drivers.values()) {
      if (d.status === "offline") continue;
      while (d.trail.length && wall - d.trail[0].ts > TRAIL_MS) d.trail.shift();
      if (!d.trail.length) continue;
      const [x, y] = displayed(d, now);
      const gradient = ctx.createLinearGradient(X(d.trail[0].x), Y(d.trail[0].y), X(x), Y(y));
      gradient.addColorStop(0, "rgba(0,0,0,0)");
      gradient.addColorStop(1, TRAIL[d.status]);
      ctx.strokeStyle = gradient;
      ctx.lineWidth = radius * 0.8;
      ctx.beginPath();
      ctx.moveTo(X(d.trail[0].x), Y(d.trail[0].y));
      for (let i = 1; i < d.trail.length; i++) ctx.lineTo(X(d.trail[i].x), Y(d.trail[i].y));
      ctx.lineTo(X(x), Y(y));
      ctx.stroke();
    }
    for (const d of drivers.values()) {
      const [wx, wy] = displayed(d, now);
      const x = X(wx), y = Y(wy);
      const fade = Math.max(0, 1 - ageOf(d) / ACTIVE_MS);
      if (d.status === "offline") {  // a ring fading out where the driver logged off
        ctx.globalAlpha = 0.9 * fade;
        ctx.strokeStyle = COLORS.offline;
        ctx.lineWidth = 1.5;
        ctx.beginPath(); ctx.arc(x, y, radius, 0, Math.PI * 2); ctx.stroke();
        ctx.globalAlpha = 1;
        continue;
      }
      const alpha = Math.min(1, fade * 4);  // fade out only in the last moments before expiry
      ctx.globalAlpha = alpha;
      ctx.fillStyle = GLOW[d.status];
      ctx.beginPath(); ctx.arc(x, y, radius * 2.2, 0, Math.PI * 2); ctx.fill();
      // A pointer in the driving direction (heading: 0 is north, 90 east).
      const a = (d.heading * Math.PI) / 180, sx = Math.sin(a), sy = -Math.cos(a);
      ctx.fillStyle = COLORS[d.status];
      ctx.beginPath();
      ctx.moveTo(x + sx * radius * 2.2, y + sy * radius * 2.2);
      ctx.lineTo(x - sy * radius * 0.9, y + sx * radius * 0.9);
      ctx.lineTo(x + sy * radius * 0.9, y - sx * radius * 0.9);
      ctx.closePath(); ctx.fill();
      ctx.beginPath(); ctx.arc(x, y, radius, 0, Math.PI * 2); ctx.fill();
      ctx.strokeStyle = "rgba(11, 18, 32, 0.9)";
      ctx.lineWidth = 1;
      ctx.stroke();
      if (hover && hover.id === d.id) {
        ctx.strokeStyle = "#fff";
        ctx.lineWidth = 2;
        ctx.beginPath(); ctx.arc(x, y, radius + 4, 0, Math.PI * 2); ctx.stroke();
      }
      ctx.globalAlpha = 1;
    }
  }

  function render() {
    const now = performance.now();
    ctx.setTransform(view.dpr, 0, 0, view.dpr, 0, 0);
    ctx.drawImage(background, 0, 0, view.width, view.height);
    drawDistricts();
    drawDrivers(now);
    if (hover) placeTooltip(now);
    requestAnimationFrame(render);
  }

  // --- Hover: which driver is that ----------------------------------------------------------

  let pointer = null;
  function placeTooltip(now) {
    const tip = $("tooltip");
    if (!drivers.has(hover.id)) { hover = null; tip.hidden = true; return; }
    const d = drivers.get(hover.id);
    const [wx, wy] = displayed(d, now);
    const status = d.status === "on_trip" ? "on trip" : d.status;
    tip.innerHTML = "";
    const title = document.createElement("b");
    title.textContent = d.id;
    tip.append(title, document.createElement("br"));
    const lines = [
      ["status", status], ["district", d.district], ["speed", d.speed.toFixed(1) + " km/h"],
      ["position", Math.round(d.x) + " m, " + Math.round(d.y) + " m"],
      ["record", "partition " + d.partition + " · offset " + d.offset],
      ["reported", (ageOf(d) / 1000).toFixed(1) + " s ago"],
    ];
    for (const [k, v] of lines) {
      const key = document.createElement("span"); key.className = "k"; key.textContent = k + " ";
      tip.append(key, document.createTextNode(v), document.createElement("br"));
    }
    tip.hidden = false;
    const left = Math.min(X(wx) + 14, view.width - tip.offsetWidth - 8);
    const top = Math.min(Y(wy) + 14, view.height - tip.offsetHeight - 8);
    tip.style.left = left + "px";
    tip.style.top = top + "px";
  }

  function pick() {
    if (!pointer) return null;
    const now = performance.now();
    let best = null, bestDistance = 12;
    for (const d of drivers.values()) {
      const [wx, wy] = displayed(d, now);
      const distance = Math.hypot(X(wx) - pointer.x, Y(wy) - pointer.y);
      if (distance < bestDistance) { best = d; bestDistance = distance; }
    }
    return best;
  }

  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    pointer = { x: event.clientX - box.left, y: event.clientY - box.top };
    hover = pick();
    if (!hover) $("tooltip").hidden = true;
  });
  canvas.addEventListener("mouseleave", () => { pointer = null; hover = null; $("tooltip").hidden = true; });

  // --- Start --------------------------------------------------------------------------------

  if (config.is_operator) {
    $("tenant").addEventListener("change", () => $("controls").submit());
  }
  buildTable();
  resize();
  window.addEventListener("resize", resize);
  setInterval(updateNumbers, 250);
  requestAnimationFrame(render);
  if (config.topic) connect();  // none: the name is not a legal topic name, the hint says so
  else setStatus("no topic", "down");
})();
