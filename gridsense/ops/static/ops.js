// gridsense operations wall: keeps the server-rendered page live from /api/events.
// No framework, no network but this origin. Fragments come from /frag/* already escaped
// by the server; this script never builds markup from data itself (textContent only).
(() => {
  "use strict";
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const body = document.body;
  const svg = $("#map");
  const NS = "http://www.w3.org/2000/svg";
  const STATE_NAMES = ["no data", "reporting", "device fault", "blue", "yellow", "orange", "red"];
  const paths = svg ? $$("#grids path", svg) : [];
  const caseLayer = svg ? document.createElementNS(NS, "g") : null;
  const selLayer = svg ? document.createElementNS(NS, "g") : null;
  let state = "";
  let versions = null;
  let mapVersion = Number(body.dataset.mapVersion || 0);
  let selectedGrid = body.dataset.grid || null;
  let detailMode = body.dataset.case ? "case:" + body.dataset.case : selectedGrid ? "grid:" + selectedGrid : null;
  let rainDevice = null;

  // --- map state ------------------------------------------------------------------------
  function decode(ch) {
    const c = ch.charCodeAt(0);
    return c >= 65 ? [c - 65, true] : [c - 48, false];
  }

  function applyState(next) {
    const n = Math.min(next.length, paths.length);
    let casesChanged = false;
    for (let i = 0; i < n; i++) {
      if (next[i] === state[i]) continue;
      const [s, cased] = decode(next[i]);
      paths[i].setAttribute("class", "s" + s + (cased ? " oc" : ""));
      if (cased || (state[i] && decode(state[i])[1])) casesChanged = true;
    }
    state = next;
    if (casesChanged || !caseLayer.childNodes.length) drawCases();
  }

  function drawCases() {
    // Open-case grids are redrawn on top, so their outline is never hidden by a neighbour.
    caseLayer.replaceChildren();
    for (let i = 0; i < state.length && i < paths.length; i++) {
      if (state.charCodeAt(i) >= 65) {
        const c = paths[i].cloneNode(false);
        c.removeAttribute("id");
        c.setAttribute("class", "case-ring");
        caseLayer.appendChild(c);
      }
    }
  }

  function highlight(code) {
    if (!selLayer) return;
    selLayer.replaceChildren();
    const p = code && document.getElementById("g" + code);
    if (!p) return;
    const c = p.cloneNode(false);
    c.removeAttribute("id");
    c.setAttribute("class", "sel-ring");
    selLayer.appendChild(c);
  }

  // --- zoom, pan, click, tooltip ----------------------------------------------------------
  let vb0 = null;
  let vb = null;
  function setViewBox() {
    svg.setAttribute("viewBox", `${vb.x} ${vb.y} ${vb.w} ${vb.h}`);
  }
  function toMap(ev) {
    const m = svg.getScreenCTM();
    if (!m) return { x: 0, y: 0 };
    const p = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(m.inverse());
    return { x: p.x, y: p.y };
  }
  let drag = null;
  function initMap() {
    const b = svg.viewBox.baseVal;
    vb0 = { x: b.x, y: b.y, w: b.width, h: b.height };
    vb = { ...vb0 };
    caseLayer.setAttribute("id", "case-layer");
    selLayer.setAttribute("id", "sel-layer");
    svg.insertBefore(caseLayer, $("#labels", svg));
    svg.appendChild(selLayer);
    svg.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const k = ev.deltaY > 0 ? 1.25 : 0.8;
      const p = toMap(ev);
      const w = Math.min(Math.max(vb.w * k, vb0.w / 400), vb0.w * 1.5);
      const f = w / vb.w;
      vb = { x: p.x - (p.x - vb.x) * f, y: p.y - (p.y - vb.y) * f, w: vb.w * f, h: vb.h * f };
      setViewBox();
    }, { passive: false });
    svg.addEventListener("pointerdown", (ev) => {
      drag = { x: ev.clientX, y: ev.clientY, vb: { ...vb }, moved: false };
    });
    window.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      const dx = ev.clientX - drag.x;
      const dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
      if (!drag.moved) return;
      const scale = vb.w / svg.clientWidth;
      vb = { ...drag.vb, x: drag.vb.x - dx * scale, y: drag.vb.y - dy * scale };
      setViewBox();
    });
    window.addEventListener("pointerup", () => {
      setTimeout(() => { drag = null; }, 0);
    });
    svg.addEventListener("dblclick", () => { vb = { ...vb0 }; setViewBox(); });
    svg.addEventListener("click", (ev) => {
      if (drag && drag.moved) return;
      const t = ev.target;
      if (t instanceof SVGPathElement && t.id.startsWith("g")) selectGrid(t.id.slice(1), true);
    });
    const tip = $("#tip");
    svg.addEventListener("mousemove", (ev) => {
      const t = ev.target;
      if (!(t instanceof SVGPathElement) || !t.id.startsWith("g")) { tip.hidden = true; return; }
      const i = paths.indexOf(t);
      const [s, cased] = state[i] ? decode(state[i]) : [0, false];
      tip.textContent = `${t.id.slice(1)} · ${STATE_NAMES[s] || "?"}${cased ? " · open case" : ""}`;
      const r = svg.parentElement.getBoundingClientRect();
      tip.style.left = `${ev.clientX - r.left + 14}px`;
      tip.style.top = `${ev.clientY - r.top + 10}px`;
      tip.hidden = false;
    });
    svg.addEventListener("mouseleave", () => { tip.hidden = true; });
  }

  // --- panels -----------------------------------------------------------------------------
  const loading = {};
  async function load(target, url) {
    if (loading[url]) return loading[url];
    const el = typeof target === "string" ? $(target) : target;
    loading[url] = (async () => {
      try {
        const r = await fetch(url, { cache: "no-store", headers: { Accept: "text/html" } });
        const html = await r.text();
        const top = el.scrollTop;
        el.innerHTML = html; // server-escaped fragment
        el.scrollTop = top;
        tick();
        return r.ok;
      } catch (err) {
        return false;
      } finally {
        delete loading[url];
      }
    })();
    return loading[url];
  }

  function refreshDetail() {
    if (!detailMode) return;
    const [kind, id] = [detailMode.slice(0, 4), detailMode.slice(5)];
    load("#detail", `/frag/${kind}/${encodeURIComponent(id)}`);
  }

  async function selectGrid(code, pickGauge) {
    selectedGrid = code;
    detailMode = "grid:" + code;
    highlight(code);
    history.replaceState(null, "", "/grid/" + encodeURIComponent(code));
    const ok = await load("#detail", "/frag/grid/" + encodeURIComponent(code));
    if (ok && pickGauge) {
      const g = $("#detail tr[data-gauge]");
      if (g) loadRain(g.dataset.gauge);
    }
  }

  async function selectCase(key) {
    detailMode = "case:" + key;
    history.replaceState(null, "", "/case/" + encodeURIComponent(key));
    await load("#detail", "/frag/case/" + encodeURIComponent(key));
    const g = $("#detail .case-detail a[data-grid]");
    if (g) { selectedGrid = g.dataset.grid; highlight(selectedGrid); }
  }

  function loadRain(device) {
    rainDevice = device || rainDevice;
    return load("#rain", "/frag/rain" + (rainDevice ? "?device=" + encodeURIComponent(rainDevice) : ""));
  }

  const lastRun = {};
  function throttled(name, minMs, fn) {
    const now = Date.now();
    if (lastRun[name] && now - lastRun[name] < minMs) {
      if (!lastRun[name + ":queued"]) {
        lastRun[name + ":queued"] = setTimeout(() => {
          lastRun[name + ":queued"] = 0;
          throttled(name, minMs, fn);
        }, minMs - (now - lastRun[name]));
      }
      return;
    }
    lastRun[name] = now;
    fn();
  }

  document.addEventListener("click", (ev) => {
    const a = ev.target.closest("a");
    if (a && !a.dataset.grid && !a.dataset.case) return; // thumbnails, back links: default
    const hit = ev.target.closest("a[data-case], a[data-grid], li.case, tr[data-gauge]");
    if (!hit) return;
    ev.preventDefault();
    if (hit.matches("tr[data-gauge]")) { loadRain(hit.dataset.gauge); return; }
    if (hit.dataset.case && !(a && a.dataset.grid)) { selectCase(hit.dataset.case); return; }
    const code = (a && a.dataset.grid) || hit.dataset.grid;
    if (a && a.dataset.gauge) loadRain(a.dataset.gauge);
    selectGrid(code, !(a && a.dataset.gauge));
  });
  document.addEventListener("change", (ev) => {
    if (ev.target.id === "gauge-pick") loadRain(ev.target.value);
  });

  // --- live feed --------------------------------------------------------------------------
  function setDot(id, ok) {
    const d = document.getElementById(id);
    if (d) d.className = "dot " + (ok ? "ok" : "bad");
  }

  let lastCount = null;
  function onState(d) {
    if (d.live) {
      const received = d.live.gateway.received || 0;
      if (lastCount && d.at_ms > lastCount.at) {
        d.kpi.msg_rate = Math.round(((received - lastCount.n) * 1000) / (d.at_ms - lastCount.at));
      } else {
        d.kpi.msg_rate = 0;
      }
      if (!lastCount || d.at_ms - lastCount.at >= 1000) lastCount = { n: received, at: d.at_ms };
    }
    for (const el of $$("[data-kpi]")) {
      const v = d.kpi[el.dataset.kpi];
      el.textContent = v === undefined || v === null ? "–" : String(v);
      const box = el.parentElement;
      box.classList.toggle("alarm", ["overdue_cases", "silent_devices", "outbox_pending"].includes(el.dataset.kpi) && v > 0);
    }
    if (d.live) {
      setDot("st-broker", d.live.connected && !d.live.fatal);
      setDot("st-platform", !d.live.breaker_open);
    }
    if (d.map !== undefined) {
      applyState(d.map);
      mapVersion = d.map_version;
      for (const el of $$("[data-count]")) {
        const k = el.dataset.count;
        el.textContent = k === "case" ? String(d.kpi.grids_with_open_case ?? "") : String(d.map_counts[k] ?? "");
      }
    }
    const v = d.versions;
    const first = versions === null;
    const changed = (k) => first || v[k] !== versions[k];
    if (changed("cases")) { throttled("cases", 1000, () => load("#cases", "/frag/cases")); }
    if (changed("incidents") || changed("deadletters")) throttled("health", 2000, () => load("#health", "/frag/health"));
    if (changed("assets")) throttled("assets", 5000, () => load("#assets", "/frag/assets"));
    if (changed("readings")) throttled("rain", 3000, () => loadRain(null));
    if (!first && (changed("cases") || changed("incidents") || changed("readings"))) {
      throttled("detail", 2000, refreshDetail);
    }
    versions = v;
    body.dataset.version = String(d.version);
  }

  function connect() {
    const es = new EventSource("/api/events");
    es.addEventListener("state", (ev) => {
      setDot("st-feed", true);
      onState(JSON.parse(ev.data));
    });
    es.onopen = () => setDot("st-feed", true);
    es.onerror = () => setDot("st-feed", false); // EventSource reconnects by itself
  }

  // --- clocks -----------------------------------------------------------------------------
  function span(ms) {
    const s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    const pad = (x) => String(x).padStart(2, "0");
    return (d ? d + "d " : "") + `${pad(h)}:${pad(m)}:${pad(s % 60)}`;
  }
  function tick() {
    const now = Date.now();
    for (const el of $$("[data-deadline]")) {
      const left = Date.parse(el.dataset.deadline) - now;
      el.textContent = left >= 0 ? "剩 " + span(left) : "超时 " + span(-left);
      el.classList.toggle("overdue", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 30 * 60 * 1000);
    }
    const clock = $("#clock");
    if (clock) {
      clock.textContent = new Date(now).toLocaleString("zh-CN", {
        timeZone: "Asia/Shanghai", hour12: false, month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    }
  }

  // --- start ------------------------------------------------------------------------------
  if (svg) {
    initMap();
    applyState(body.dataset.state || "");
    if (!selectedGrid && body.dataset.case) {
      const g = $("#detail .case-detail a[data-grid]");
      if (g) selectedGrid = g.dataset.grid;
    }
    if (selectedGrid) highlight(selectedGrid);
  }
  const picked = $("#gauge-pick");
  if (picked) rainDevice = picked.value;
  tick();
  setInterval(tick, 1000);
  connect();
  window.opsWall = { applyState }; // for bench/ops_page_load.py and debugging from the console
  body.dataset.ready = "1";
})();
