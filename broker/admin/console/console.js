// console.js: stompd's web console: reads the management API of the server that served
// it (the browser logs in with HTTP Basic), shows the overview with a live chart of the
// message rates, the destinations and the connections, and runs the actions (destructive
// ones after a confirmation). No framework, no external files.
'use strict';

const POLL_MS = 1000;
const HISTORY = 120; // points on the chart: two minutes
const history = [];
const $ = (sel) => document.querySelector(sel);

async function api(method, path) {
  const r = await fetch(path, { method, cache: 'no-store' });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || ('HTTP ' + r.status));
  return body;
}

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function button(td, label, action) {
  const b = document.createElement('button');
  b.textContent = label;
  b.dataset.action = label.toLowerCase();
  b.addEventListener('click', action);
  td.appendChild(b);
}

function confirmThen(text, run) {
  const dlg = $('#confirm');
  $('#confirm-text').textContent = text;
  const yes = $('#confirm-yes');
  const no = $('#confirm-no');
  const close = () => { yes.onclick = null; no.onclick = null; dlg.close(); };
  yes.onclick = () => { close(); run(); };
  no.onclick = close;
  dlg.showModal();
}

function report(text) {
  $('#result').textContent = text;
}

async function act(method, path, done) {
  try {
    report(done(await api(method, path)));
  } catch (e) {
    report('failed: ' + e.message);
  }
  refresh();
}

const q = (name) => encodeURIComponent(name);

function purge(name) {
  confirmThen(`Purge every message of ${name} that is not delivered?`, () =>
    act('POST', '/api/destinations/purge?name=' + q(name),
      (r) => `purged ${r.purged} messages from ${r.name}`));
}

function remove(name) {
  confirmThen(`Delete ${name} and its messages?`, () =>
    act('DELETE', '/api/destinations?name=' + q(name), (r) => `deleted ${r.name}`));
}

function moveDead(name) {
  confirmThen(`Move the messages of ${name} back to their queues?`, () =>
    act('POST', '/api/destinations/move-dead?name=' + q(name),
      (r) => `moved ${r.moved} messages from ${r.name}, ${r.kept} left`));
}

function closeConn(id) {
  confirmThen(`Close connection ${id}?`, () =>
    act('DELETE', '/api/connections/' + id, (r) => `closed connection ${r.closed}`));
}

async function browse(name) {
  try {
    const r = await api('GET', '/api/destinations/browse?count=20&name=' + q(name));
    $('#browse-name').textContent = r.name;
    const tbody = $('#browse-table tbody');
    tbody.replaceChildren();
    for (const m of r.messages) {
      const tr = document.createElement('tr');
      cell(tr, m.message_id);
      cell(tr, m.priority, 'num');
      cell(tr, m.redeliveries, 'num');
      const pre = document.createElement('pre');
      pre.textContent = Object.entries(m.headers).map(([k, v]) => k + ':' + v).join('\n');
      cell(tr, '').appendChild(pre);
      cell(tr, m.body + (m.body_truncated ? '\u2026' : ''));
      tbody.appendChild(tr);
    }
    $('#browse').hidden = false;
  } catch (e) {
    report('browse failed: ' + e.message);
  }
}

function renderOverview(o) {
  const facts = [['Version', o.version], ['Uptime', o.uptime_s + ' s'],
    ['Connections', o.connections], ['Subscriptions', o.subscriptions],
    ['Queues', o.queues], ['Topics', o.topics], ['Messages in', o.messages_in],
    ['Messages out', o.messages_out], ['Rate in', o.rate_in + '/s'],
    ['Rate out', o.rate_out + '/s'], ['Memory', o.memory + ' of ' + o.max_memory + ' bytes'],
    ['Store', o.store.backend + (o.store.path ? ' ' + o.store.path : '')],
    ['Dead-lettered', o.dead_lettered]];
  const dl = $('#overview-facts');
  dl.replaceChildren();
  for (const [k, v] of facts) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    dd.dataset.fact = k.toLowerCase().replace(/ /g, '-');
    dl.append(dt, dd);
  }
  history.push([o.rate_in, o.rate_out]);
  if (history.length > HISTORY) history.shift();
  drawChart();
  $('#rates-now').textContent = `now: ${o.rate_in} in, ${o.rate_out} out per second`;
}

function drawChart() {
  const c = $('#rates');
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1, ...history.flat());
  g.fillStyle = '#888';
  g.fillText(String(max), 4, 12);
  [['#1e88e5', 0], ['#e53935', 1]].forEach(([color, i]) => {
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    history.forEach((p, x) => {
      const px = (x / (HISTORY - 1)) * (c.width - 1);
      const py = c.height - 2 - (p[i] / max) * (c.height - 20);
      if (x === 0) g.moveTo(px, py); else g.lineTo(px, py);
    });
    g.stroke();
  });
  c.dataset.points = String(history.length);
}

function renderDestinations(list) {
  const tbody = $('#dest-table tbody');
  tbody.replaceChildren();
  for (const d of list) {
    const tr = document.createElement('tr');
    tr.dataset.name = d.name;
    cell(tr, d.name);
    cell(tr, d.type);
    cell(tr, d.depth, 'num');
    cell(tr, d.consumers, 'num');
    cell(tr, d.type === 'queue' ? d.unacked : '', 'num');
    cell(tr, d.rate_in, 'num');
    cell(tr, d.rate_out, 'num');
    cell(tr, d.type === 'queue' ? d.dead_lettered : '', 'num');
    const td = cell(tr, '');
    if (d.type === 'queue') {
      button(td, 'Browse', () => browse(d.name));
      button(td, 'Purge', () => purge(d.name));
      if (d.dead_letter_queue) button(td, 'Move back', () => moveDead(d.name));
    }
    button(td, 'Delete', () => remove(d.name));
    tbody.appendChild(tr);
  }
}

function renderConnections(list) {
  const tbody = $('#conn-table tbody');
  tbody.replaceChildren();
  for (const c of list) {
    const tr = document.createElement('tr');
    tr.dataset.id = c.id;
    cell(tr, c.id, 'num');
    cell(tr, c.peer);
    cell(tr, c.login || '');
    cell(tr, c.version || '');
    cell(tr, c.since);
    cell(tr, c.bytes_in, 'num');
    cell(tr, c.bytes_out, 'num');
    cell(tr, c.subscriptions, 'num');
    button(cell(tr, ''), 'Close', () => closeConn(c.id));
    tbody.appendChild(tr);
  }
}

async function refresh() {
  try {
    const [o, d, c] = await Promise.all([api('GET', '/api/overview'),
      api('GET', '/api/destinations'), api('GET', '/api/connections')]);
    renderOverview(o);
    renderDestinations(d);
    renderConnections(c);
    $('#status').textContent = 'updated ' + new Date().toLocaleTimeString();
    $('#status').className = 'ok';
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  } catch (e) {
    $('#status').textContent = 'error: ' + e.message;
    $('#status').className = 'error';
  }
}

function show() {
  const view = (location.hash || '#overview').slice(1);
  for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== view;
  for (const a of document.querySelectorAll('nav a'))
    a.classList.toggle('active', a.id === 'nav-' + view);
}

window.addEventListener('hashchange', show);
show();
refresh();
setInterval(refresh, POLL_MS);
