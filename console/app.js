/* Herald office console. Plain JavaScript, no outside files: it signs in
 * with an API token kept in sessionStorage, reads the JSON API of the
 * daemon that served it, and draws its charts as SVG. Data from the API
 * is always put in the page as text (textContent), never as HTML. */
"use strict";

const KEY = "herald.token";
const FAMILY = { rights_notice: "权利告知", case_stage: "案件进度", survey: "评议", bulletin: "公告" };
const LANE = { urgent: "紧急", bulk: "批量" };
const STATUS = { queued: "排队", sending: "发送中", sent: "已发送", delivered: "已送达", failed: "失败",
                 uncertain: "待确认", dead: "死信", retried: "重试", scheduled: "定时" };
const SVGNS = "http://www.w3.org/2000/svg";
let timer = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of kids) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function status(msg) { $("status").textContent = msg; }

/* A number as phone_mask() shows it (138****5678): the API masks for a
 * read token, but an admin or contacts token gets whole numbers, and the
 * page shows none. Text already masked is left as it is. */
function mask(p) {
  let n = String(p || "").replace(/[ -]/g, "");
  if (!n || n.includes("*")) return String(p || "");
  if (n.startsWith("+86")) n = n.slice(3); else if (n.startsWith("+")) n = n.slice(1);
  return n.length < 8 ? "****" : `${n.slice(0, 3)}****${n.slice(-4)}`;
}

/* Seconds between refreshes: 15, or ?refresh=N in the page's address
 * (kept in sessionStorage for the tab), bounded to 2..300. */
function refreshSeconds() {
  const q = new URLSearchParams(location.search).get("refresh");
  if (q !== null) sessionStorage.setItem("herald.refresh", q);
  const n = parseInt(sessionStorage.getItem("herald.refresh") || "15", 10);
  return Math.min(300, Math.max(2, Number.isFinite(n) ? n : 15));
}

function fmtTime(ms) {
  if (!ms) return "";
  const d = new Date(ms), p = (n, w) => String(n).padStart(w || 2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function fmtAge(ms) {
  const s = Math.round((ms || 0) / 1000);
  if (s < 60) return `${s} 秒`;
  if (s < 3600) return `${Math.floor(s / 60)} 分 ${s % 60} 秒`;
  return `${Math.floor(s / 3600)} 小时 ${Math.floor((s % 3600) / 60)} 分`;
}

/* One API call. Resolves {status, body}; a network failure is status 0. */
async function api(path, opts) {
  const o = Object.assign({ headers: {} }, opts || {});
  o.headers.Authorization = "Bearer " + sessionStorage.getItem(KEY);
  try {
    const r = await fetch(path, o);
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    return { status: r.status, body };
  } catch (e) {
    return { status: 0, body: { error: { message: "无法连接服务器" } } };
  }
}

function errText(r) {
  if (r.status === 401) return "令牌无效";
  if (r.status === 403) return "令牌权限不足";
  return (r.body && r.body.error && r.body.error.message) || `错误 ${r.status}`;
}

function notAvailable(box, what) {
  box.replaceChildren(el("p", { class: "na" }, `${what}：暂不可用（服务器尚未提供此接口）`));
}

/* ---- charts --------------------------------------------------------- */

/* Grouped bars: groups [{label, values:[n...]}], series [{name, color}]. */
function barChart(groups, series, title) {
  const W = 560, H = 220, L = 40, B = 40, T = 24;
  const max = 4 * Math.ceil(Math.max(4, ...groups.flatMap((g) => g.values)) / 4);   /* 4 whole-number ticks */
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  s.append(svg("title", {}, title));
  const gw = (W - L - 10) / Math.max(1, groups.length), bw = Math.max(4, (gw - 12) / series.length);
  for (let i = 0; i <= 4; i++) {
    const y = T + (H - T - B) * (1 - i / 4);
    s.append(svg("line", { x1: L, x2: W - 5, y1: y, y2: y, stroke: "#e3e7ec" }));
    s.append(svg("text", { x: L - 4, y: y + 4, "text-anchor": "end", "font-size": 10, fill: "#5b6775" },
                 String(Math.round(max * i / 4))));
  }
  groups.forEach((g, gi) => {
    g.values.forEach((v, si) => {
      const h = (H - T - B) * v / max, x = L + gi * gw + 6 + si * bw;
      const r = svg("rect", { x, y: H - B - h, width: bw - 2, height: h, fill: series[si].color });
      r.append(svg("title", {}, `${g.label} ${series[si].name}: ${v}`));
      s.append(r);
    });
    s.append(svg("text", { x: L + gi * gw + gw / 2, y: H - B + 16, "text-anchor": "middle", "font-size": 12, fill: "#1d2733" }, g.label));
  });
  series.forEach((se, si) => {
    s.append(svg("rect", { x: L + si * 90, y: 4, width: 10, height: 10, fill: se.color }));
    s.append(svg("text", { x: L + si * 90 + 14, y: 13, "font-size": 11, fill: "#1d2733" }, se.name));
  });
  return s;
}

/* ---- sign-in -------------------------------------------------------- */

async function signIn(token) {
  sessionStorage.setItem(KEY, token);
  const r = await api("/v1/console/summary");
  if (r.status !== 200) {
    sessionStorage.removeItem(KEY);
    showSignIn(errText(r) + (r.status === 403 ? "（需要 read 权限）" : ""));
    return;
  }
  $("signin").hidden = true;
  $("app").hidden = false;
  $("nav").hidden = false;
  renderToday(r.body);
  loadSurvey();
  loadDead();
  loadBulletins();
  clearInterval(timer);
  timer = setInterval(refresh, refreshSeconds() * 1000);
  status("已登录");
}

function showSignIn(msg) {
  clearInterval(timer);
  $("app").hidden = true;
  $("nav").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = msg || "";
}

let refreshing = false;

/* Every refreshSeconds() while the tab is visible (a hidden tab polls
 * nothing); one refresh at a time. */
async function refresh() {
  if (refreshing || document.visibilityState === "hidden") return;
  refreshing = true;
  try {
    const r = await api("/v1/console/summary");
    if (r.status === 401 || r.status === 403) { showSignIn(errText(r)); return; }
    if (r.status === 200) renderToday(r.body); else status(errText(r));
    await Promise.all([loadSurvey(), loadBulletins()]);   /* the survey and bulletins refresh with the rest */
  } finally {
    refreshing = false;
  }
}

/* ---- today ---------------------------------------------------------- */

/* The local day's counters "<family>:<event>" (stats.today, in the
 * gateway's time zone): what happened since midnight, per family. */
function renderToday(d) {
  $("updated").textContent = "更新于 " + fmtTime(d.now);
  const today = (d.stats && d.stats.today) || { day: "", counters: {} };
  $("today-day").textContent = `${today.day}${d.timezone ? "，" + d.timezone : ""}`;
  const events = ["queued", "sent", "delivered", "failed", "dead"];
  const names = { queued: "受理", sent: "已发送", delivered: "已送达", failed: "失败", dead: "死信" };
  const colors = { queued: "#6b4fa0", sent: "#2a5ea8", delivered: "#1f7a3a", failed: "#b86e00", dead: "#b3261e" };
  const fig = {};
  for (const f of d.families) fig[f] = Object.fromEntries(events.map((e) => [e, 0]));
  for (const [k, v] of Object.entries(today.counters || {})) {
    const i = k.lastIndexOf(":"), fam = k.slice(0, i), ev = k.slice(i + 1);
    if (fig[fam] && ev in fig[fam]) fig[fam][ev] += v;
  }
  /* what waits now (not today's events): a scan of the lanes and the
   * schedule, exact unless they hold more than it reads (waiting_scan) */
  const st = d.stats || {}, scan = st.waiting_scan || { exact: true };
  const waitBy = st.waiting_by_family || {}, schedBy = st.scheduled_by_family || {};
  const partial = (n) => scan.exact ? String(n ?? 0) : `≥${n ?? 0}`;
  const partTitle = scan.exact ? "" : `队列较长，只统计了各通道最早的 ${scan.limit} 条（另有 ${scan.unscanned} 条未统计）`;
  const t = $("families");
  t.replaceChildren(el("tr", {}, el("th", {}, "类别"), ...events.map((e) => el("th", { class: "num" }, names[e])),
                       el("th", { class: "num", title: "在通道中等待发送的短信（当前）" }, "等待"),
                       el("th", { class: "num", title: "定时发送或重试等待中的短信（当前）" }, "定时")));
  for (const f of d.families)
    t.append(el("tr", { "data-family": f }, el("td", {}, FAMILY[f] || f),
                ...events.map((e) => el("td", { class: "num", "data-event": e }, fig[f][e])),
                el("td", { class: "num", "data-event": "waiting", title: partTitle }, partial(waitBy[f])),
                el("td", { class: "num", "data-event": "scheduled", title: partTitle }, partial(schedBy[f]))));
  $("families-chart").replaceChildren(barChart(
    d.families.map((f) => ({ label: FAMILY[f] || f, values: events.map((e) => fig[f][e]).concat([waitBy[f] || 0]) })),
    events.map((e) => ({ name: names[e], color: colors[e] })).concat([{ name: "等待", color: "#5b6775" }]), "今日各类短信数量"));

  const lanes = (d.stats && d.stats.lanes) || {};
  const lt = $("lanes");
  /* a lane's depth is what waits plus what is in flight (docs/redis-keys.md) */
  lt.replaceChildren(el("tr", {}, el("th", {}, "通道"), el("th", { class: "num" }, "等待"),
                        el("th", { class: "num" }, "处理中"), el("th", { class: "num" }, "最久等待")));
  for (const [name, l] of Object.entries(lanes))
    lt.append(el("tr", { "data-lane": name }, el("td", {}, LANE[name] || name),
                 el("td", { class: "num", "data-waiting": "" }, Math.max(0, l.depth - l.pending)),
                 el("td", { class: "num" }, l.pending), el("td", { class: "num" }, fmtAge(l.oldest_age_ms))));
  lt.append(el("tr", {}, el("td", {}, "定时 / 待确认 / 死信"), el("td", { class: "num", colspan: 3 },
               `${d.stats.scheduled} / ${d.stats.uncertain} / ${d.stats.dead}`)));
  $("lanes-chart").replaceChildren(barChart(
    Object.keys(lanes).map((n) => ({ label: LANE[n] || n, values: [Math.max(0, lanes[n].depth - lanes[n].pending), lanes[n].pending] })),
    [{ name: "等待", color: "#2a5ea8" }, { name: "处理中", color: "#b86e00" }], "队列深度"));

  const rt = $("routes");
  rt.replaceChildren(el("tr", {}, ...["线路", "驱动", "状态", "详情", "信号", "熔断", "错误率", "类别"].map((h) => el("th", {}, h))));
  const pub = d.published || {};
  for (const r of d.routes) {
    const p = pub[`${d.instance}/${r.name}`] || {};
    const rate = typeof p.error_rate === "number" ? (p.error_rate * 100).toFixed(1) + "%" : "";
    rt.append(el("tr", { "data-route": r.name }, el("td", {}, r.name), el("td", {}, r.driver),
                 el("td", { class: r.up ? "up" : "down" }, r.up ? "正常" : "停用"), el("td", {}, r.state),
                 el("td", { class: "num" }, r.signal >= 0 ? r.signal + "%" : "—"),
                 el("td", {}, p.breaker !== undefined ? String(p.breaker) : ""), el("td", { class: "num" }, rate),
                 el("td", {}, r.families.map((f) => FAMILY[f] || f).join("、"))));
  }
  const mt = $("modems");
  const mods = Object.entries(d.modems || {});
  if (!mods.length) { mt.replaceChildren(el("tr", {}, el("td", { class: "na" }, "没有短信猫"))); return; }
  mt.replaceChildren(el("tr", {}, ...["IMEI", "线路", "状态", "信号", "运营商", "已发", "失败", "收到", "最近错误"].map((h) => el("th", {}, h))));
  for (const [id, m] of mods)
    mt.append(el("tr", {}, el("td", {}, id), el("td", {}, m.route || ""), el("td", { class: m.up ? "up" : "down" }, m.state || ""),
                 el("td", { class: "num" }, m.signal >= 0 ? m.signal + "%" : "—"), el("td", {}, m.operator || ""),
                 el("td", { class: "num" }, m.sent ?? 0), el("td", { class: "num" }, m.failed ?? 0),
                 el("td", { class: "num" }, m.received ?? 0), el("td", {}, m.last_error || "")));
}

/* ---- the month's survey -------------------------------------------- */

const RSTATUS = { parsed: "已识别", partial: "部分识别", unparsed: "未识别", optout: "退订", ack: "已确认" };
const pct = (r) => ((r || 0) * 100).toFixed(1) + "%";

/* One aspect's ratings as bars, one per label; each bar carries its label
 * and count (data-label, data-count) and says them in its title. */
function aspectChart(a, labels) {
  const W = 260, H = 150, L = 28, B = 34, T = 10, counts = a.counts || [];
  const max = 4 * Math.ceil(Math.max(4, ...counts) / 4);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": a.name });
  s.append(svg("title", {}, `${a.name}：${labels.map((l, i) => `${l} ${counts[i] || 0}`).join("，")}`));
  for (let i = 0; i <= 4; i++) {
    const y = T + (H - T - B) * (1 - i / 4);
    s.append(svg("line", { x1: L, x2: W - 4, y1: y, y2: y, stroke: "#e3e7ec" }));
    s.append(svg("text", { x: L - 4, y: y + 4, "text-anchor": "end", "font-size": 10, fill: "#5b6775" },
                 String(Math.round(max * i / 4))));
  }
  const palette = ["#1f7a3a", "#5aa36b", "#b8b8b8", "#b86e00", "#b3261e", "#6b4fa0"];
  const bw = (W - L - 8) / Math.max(1, labels.length);
  labels.forEach((l, i) => {
    const v = counts[i] || 0, h = (H - T - B) * v / max, x = L + i * bw + 4;
    const r = svg("rect", { x, y: H - B - h, width: bw - 8, height: h, fill: palette[i % palette.length],
                            "data-label": l, "data-count": v });
    r.append(svg("title", {}, `${a.name} ${l}: ${v}`));
    s.append(r);
    s.append(svg("text", { x: x + (bw - 8) / 2, y: H - B - h - 3, "text-anchor": "middle", "font-size": 10, fill: "#1d2733" }, String(v)));
    s.append(svg("text", { x: x + (bw - 8) / 2, y: H - B + 14, "text-anchor": "middle", "font-size": 11, fill: "#1d2733" }, l));
  });
  return s;
}

/* by_department / by_prosecutor: {name: {surveys, sent, delivered, replied,
 * response_rate, aspects}} as a table, one row per name (data-name). */
function groupTable(id, title, g, aspects) {
  const t = el("table", { class: "list", id },
               el("tr", {}, el("th", {}, title), ...["发出", "送达", "回复", "回复率"].map((h) => el("th", { class: "num" }, h)),
                  ...aspects.map((a) => el("th", { class: "num" }, `${a.name}满意率`))));
  for (const [name, x] of Object.entries(g || {}).sort((p, q) => p[0].localeCompare(q[0], "zh")))
    t.append(el("tr", { "data-name": name }, el("td", {}, name),
                el("td", { class: "num", "data-k": "sent" }, x.sent ?? 0),
                el("td", { class: "num", "data-k": "delivered" }, x.delivered ?? 0),
                el("td", { class: "num", "data-k": "replied" }, x.replied ?? 0),
                el("td", { class: "num", "data-k": "response_rate" }, pct(x.response_rate)),
                ...(x.aspects || []).map((a) => el("td", { class: "num", "data-aspect": a.key },
                                                   a.answered ? pct(a.satisfaction_rate) : "—"))));
  return el("div", { class: "scroll" }, t);
}

/* GET /v1/surveys/{period}/report (gateway/survey_report.c): the figures,
 * a chart per aspect, by department and by prosecutor, the suggestions and
 * unparsed replies newest first. Redrawn on each refresh. */
async function loadSurvey() {
  const box = $("survey-body"), period = $("period").value;
  const r = await api(`/v1/surveys/${encodeURIComponent(period)}/report`);
  if (r.status === 404 && !(r.body && r.body.error && /period|survey|report/.test(r.body.error.field || "")))
    return notAvailable(box, "评议报告");
  if (r.status !== 200) { box.replaceChildren(el("p", { class: "error" }, errText(r))); return; }
  const rep = r.body, tot = rep.total || {}, labels = rep.labels || [], aspects = tot.aspects || [];
  const kv = (k, name, v) => [el("dt", {}, name), el("dd", { "data-k": k }, v)];
  const head = el("p", { class: "hint", id: "survey-title" },
                  `${rep.period_label || rep.period}（${rep.period}），批次状态：${rep.run_state || ""}；生成于 ${fmtTime(rep.generated_at)}`);
  const dl = el("dl", { class: "kv", id: "survey-total" },
    ...kv("sent", "发出", tot.sent ?? 0), ...kv("delivered", "送达", tot.delivered ?? 0),
    ...kv("replied", "回复", tot.replied ?? 0), ...kv("response_rate", "回复率", pct(tot.response_rate)));
  const charts = el("div", { class: "aspects", id: "survey-aspects" });
  for (const a of aspects)
    charts.append(el("figure", { class: "aspect", "data-aspect": a.key }, aspectChart(a, labels),
                     el("figcaption", {}, `${a.name}：${a.answered ?? 0} 人评价，满意率 ${pct(a.satisfaction_rate)}`)));
  const items = (rep.suggestions || []).map((x) => Object.assign({ kind2: "suggestion" }, x))
    .concat((rep.unparsed || []).map((x) => Object.assign({ kind2: "unparsed" }, x)))
    .sort((a, b) => (b.at || 0) - (a.at || 0));
  const ul = el("ul", { class: "timeline", id: "survey-suggestions" });
  for (const x of items)
    ul.append(el("li", { "data-kind": x.kind2, class: "st-" + x.kind2 }, el("time", {}, fmtTime(x.at)),
                 el("strong", {}, x.kind2 === "unparsed" ? "未识别" : "意见建议"), " ",
                 `${mask(x.phone)} ${x.case_no || ""}${x.department ? " · " + x.department : ""}${x.prosecutor ? " · " + x.prosecutor : ""}：`,
                 el("span", { class: "text" }, x.text || "")));
  box.replaceChildren(head, dl, el("h3", {}, "各项评价"), charts,
    el("h3", {}, "按部门"), groupTable("survey-by-department", "部门", rep.by_department, aspects),
    el("h3", {}, "按承办检察官"), groupTable("survey-by-prosecutor", "承办检察官", rep.by_prosecutor, aspects),
    el("h3", {}, "意见建议与未识别回复"), items.length ? ul : el("p", { class: "na", id: "survey-suggestions" }, "暂无"),
    el("p", { class: "actions" }, el("button", { type: "button", id: "survey-print", onclick: printSurvey }, "打印报告")));
  await loadReplies();
}

/* The printable report: the print stylesheet (app.css, body.print-survey)
 * keeps the survey's figures, charts and lists and hides the rest. */
function printSurvey() {
  document.body.classList.add("print-survey");
  window.addEventListener("afterprint", () => document.body.classList.remove("print-survey"), { once: true });
  window.print();
}

/* The latest replies of the period (GET /v1/replies, oldest first, at
 * most 1000), newest 50 first. */
async function loadReplies() {
  const box = $("replies-body");
  const r = await api(`/v1/replies?period=${encodeURIComponent($("period").value)}&limit=1000`);
  if (r.status === 404) return notAvailable(box, "回复列表");
  if (r.status !== 200) { box.replaceChildren(el("p", { class: "error" }, errText(r))); return; }
  const items = (r.body.replies || []).slice().sort((a, b) => (b.at || 0) - (a.at || 0)).slice(0, 50);
  const ul = el("ul", { class: "timeline", id: "replies-list" });
  for (const x of items) {
    const ratings = (x.ratings || []).some((v) => v > 0) ? `评分 ${x.ratings.join("/")}` : "";
    ul.append(el("li", { "data-status": x.status || "" }, el("time", {}, fmtTime(x.at)),
                 el("strong", {}, RSTATUS[x.status] || x.status || ""), " ",
                 `${mask(x.phone)} ${x.case_no || ""}${x.department ? " · " + x.department : ""}：`,
                 [ratings, x.suggestion || ""].filter((v) => v).join("；")));
  }
  box.replaceChildren(items.length ? ul : el("p", { class: "na" }, "暂无回复"));
}

/* ---- a message's story ---------------------------------------------- */

const DLR = { ".": "未回", P: "待定", D: "送达", F: "失败" };

/* The record and its timeline (GET /v1/messages/{id}). */
function story(m) {
  const kv = el("dl", { class: "kv", id: "story-record" });
  const dlr = [...(m.dlr || "")].map((c, i) => `第${i + 1}段${DLR[c] || c}`).join("，");
  const fields = [["编号", m.id], ["状态", STATUS[m.status] || m.status], ["类别", FAMILY[m.family] || m.family],
                  ["模板", m.template], ["号码", mask(m.to)], ["案号", (m.vars && m.vars.case_no) || ""],
                  ["幂等键", m.key], ["尝试次数", m.attempts], ["线路", m.route], ["分段引用", m.refs],
                  ["状态报告", dlr], ["条数", m.parts], ["最近错误", m.error], ["创建", fmtTime(m.created)]];
  for (const [k, v] of fields) if (v !== undefined && v !== "") kv.append(el("dt", {}, k), el("dd", {}, v));
  const ul = el("ol", { class: "timeline", id: "story-timeline" });
  for (const t of m.timeline || [])
    ul.append(el("li", { class: "st-" + t.status }, el("time", {}, fmtTime(t.at)),
                 el("strong", {}, STATUS[t.status] || t.status), " ", t.detail || ""));
  return el("div", { id: "story-one" }, kv, el("h3", {}, "经过"), ul);
}

/* One message of a case's list, opened below the list. */
async function openOne(id) {
  const box = $("case-story");
  const r = await api(`/v1/messages/${encodeURIComponent(id)}`);
  box.replaceChildren(r.status === 200 ? story(r.body) : el("p", { class: "error" }, errText(r)));
}

/* The messages of a case number (GET /v1/messages?case_no=), newest first. */
function caseList(q, list) {
  const t = el("table", { class: "list", id: "case-table" },
               el("tr", {}, ...["编号", "创建", "类别", "模板", "状态", "号码"].map((h) => el("th", {}, h))));
  for (const m of list)
    t.append(el("tr", { "data-id": m.id },
                el("td", {}, el("a", { href: "#story", onclick: () => openOne(m.id) }, m.id)),
                el("td", {}, fmtTime(m.created)), el("td", {}, FAMILY[m.family] || m.family),
                el("td", {}, m.template), el("td", {}, STATUS[m.status] || m.status), el("td", {}, mask(m.to))));
  return [el("h3", { id: "case-title" }, `案号 ${q}：${list.length} 条短信`), el("div", { class: "scroll" }, t),
          el("div", { id: "case-story" })];
}

/* The box takes a message id, an idempotency key or a case number, tried
 * in that order. */
async function lookup(q) {
  const box = $("story-body");
  q = q.trim();
  if (!q) return;
  let r = await api(`/v1/messages/${encodeURIComponent(q)}`);
  if (r.status === 404 || r.status === 400)
    r = await api(`/v1/messages?key=${encodeURIComponent(q)}`);
  if (r.status === 200) { box.replaceChildren(story(r.body)); return; }
  if (r.status === 404 || r.status === 400) {
    r = await api(`/v1/messages?case_no=${encodeURIComponent(q)}`);
    const list = (r.status === 200 && r.body.messages) || [];
    if (list.length) {
      box.replaceChildren(...caseList(q, list));
      if (list.length === 1) openOne(list[0].id);
      return;
    }
    if (r.status === 200 || r.status === 404) {
      box.replaceChildren(el("p", { class: "error" }, `没有找到 ${q}（编号、幂等键或案号）`));
      return;
    }
  }
  box.replaceChildren(el("p", { class: "error" }, errText(r)));
}

/* ---- dead letters ---------------------------------------------------- */

async function loadDead() {
  const box = $("dead-body");
  const r = await api("/v1/console/dead?max=200");
  if (r.status !== 200) { box.replaceChildren(el("p", { class: "error" }, errText(r))); return; }
  const items = r.body.dead || [];
  if (!items.length) { box.replaceChildren(el("p", { class: "na" }, "没有死信")); return; }
  const t = el("table", { class: "list", id: "dead-table" },
               el("tr", {}, el("th", {}, ""), ...["编号", "原因", "类别", "通道", "时间", ""].map((h) => el("th", {}, h))));
  for (const d of items)
    t.append(el("tr", { "data-id": d.id }, el("td", {}, el("input", { type: "checkbox", value: d.id, "aria-label": "选择" })),
                el("td", {}, el("a", { href: "#story", onclick: () => { $("story-q").value = d.id; lookup(d.id); } }, d.id)),
                el("td", {}, d.reason || ""), el("td", {}, FAMILY[d.family] || d.family || ""), el("td", {}, LANE[d.lane] || d.lane || ""),
                el("td", {}, fmtTime(d.at)),
                el("td", {}, el("button", { type: "button", class: "small requeue", onclick: () => requeue([d.id]) }, "重新入队"))));
  box.replaceChildren(el("div", { class: "scroll" }, t));
}

async function requeue(ids) {
  let ok = 0;
  const errs = [];
  for (const id of ids) {
    const r = await api(`/v1/console/dead/${encodeURIComponent(id)}/requeue`, { method: "POST" });
    if (r.status === 200) ok++; else errs.push(`${id}: ${errText(r)}`);
  }
  status(`已重新入队 ${ok} 条` + (errs.length ? `；失败：${errs.join("；")}` : ""));
  await loadDead();
}

/* ---- bulletins -------------------------------------------------------- */

/* GET /v1/bulletins: the issues, newest first, with their figures. */
async function loadBulletins() {
  const box = $("bulletins-body");
  const r = await api("/v1/bulletins?max=20");
  if (r.status === 404 || r.status === 405) return notAvailable(box, "公告列表");
  if (r.status !== 200) { box.replaceChildren(el("p", { class: "error" }, errText(r))); return; }
  const items = r.body.bulletins || [];
  const cols = [["recipients", "收件人"], ["mms_sent", "彩信已发"], ["mms_retrieved", "彩信已读取"], ["failed", "失败"],
                ["sms_fallback", "短信补发"], ["sms_only", "仅短信"], ["skipped_optout", "已退订"]];
  const t = el("table", { class: "list", id: "bulletins-table" },
               el("tr", {}, ...["刊名", "期号", "主题", "时间"].map((h) => el("th", {}, h)),
                  ...cols.map(([, h]) => el("th", { class: "num" }, h))));
  for (const b of items)
    t.append(el("tr", { "data-title": b.title || "", "data-issue": b.issue ?? "" },
                el("td", {}, b.title || ""), el("td", { class: "num" }, b.issue ?? ""), el("td", {}, b.subject || ""),
                el("td", {}, fmtTime(b.send_at > b.created ? b.send_at : b.created)),
                ...cols.map(([k]) => el("td", { class: "num", "data-k": k }, b[k] ?? 0))));
  box.replaceChildren(items.length ? el("div", { class: "scroll" }, t) : el("p", { class: "na" }, "暂无公告"));
}

/* ---- start ------------------------------------------------------------ */

document.addEventListener("DOMContentLoaded", () => {
  const now = new Date();
  $("period").value = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}`;
  $("period").addEventListener("change", () => loadSurvey());
  $("signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); $("token").value = ""; });
  $("signout").addEventListener("click", () => { sessionStorage.removeItem(KEY); showSignIn("已退出"); });
  $("story-form").addEventListener("submit", (e) => { e.preventDefault(); lookup($("story-q").value); });
  $("dead-refresh").addEventListener("click", loadDead);
  $("dead-requeue-sel").addEventListener("click", () =>
    requeue([...document.querySelectorAll("#dead-table input:checked")].map((c) => c.value)));
  const saved = sessionStorage.getItem(KEY);
  if (saved) signIn(saved); else showSignIn("");
});
