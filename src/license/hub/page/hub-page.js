// The restore hub's self-service page script (Wibu 000 P002 §2.1 "single click"; "CM-Box Backup" §2.5 restore with a
// choice of licensors and progress as they answer, §2.11 the licensor's alerts, §2.12 transfer; 001 reactivation).
// Plain browser JavaScript, no framework, nothing loaded from elsewhere; text only ever goes in through textContent.
/* global document, window, fetch, FileReader, Blob, URL, CSSStyleSheet, setTimeout */

const POLL_MS = 400;
const STYLE = `
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2430; background: #f4f6f9; }
  header { background: #23395d; color: #fff; padding: 12px 24px; display: flex; align-items: center; gap: 24px; }
  header h1 { font-size: 20px; margin: 0; }
  nav button { background: transparent; color: #fff; border: 1px solid #7f95b8; border-radius: 4px; padding: 5px 12px; cursor: pointer; }
  nav button[aria-pressed="true"] { background: #fff; color: #23395d; }
  main { max-width: 1000px; margin: 16px auto; background: #fff; padding: 8px 24px 24px; border-radius: 6px; box-shadow: 0 1px 3px #0002; }
  .files { display: flex; flex-wrap: wrap; gap: 16px; align-items: center; }
  table { border-collapse: collapse; width: 100%; margin: 12px 0; }
  th, td { border-bottom: 1px solid #dde3ea; padding: 6px 8px; text-align: left; vertical-align: top; }
  th { background: #eef2f7; font-weight: 600; }
  td.status { font-weight: 600; }
  td.status.restored { color: #17703a; } td.status.pending { color: #8a6d00; }
  td.status.refused, td.status.not-restorable { color: #a12a2a; } td.status.approval { color: #7a3fa0; }
  button { padding: 6px 14px; }
  a[download] { font-weight: 600; }
  details { margin: 14px 0; border: 1px solid #dde3ea; border-radius: 4px; padding: 8px 12px; }
  summary { cursor: pointer; font-weight: 600; }
  .error { color: #a12a2a; }
`;

const $ = (id) => document.getElementById(id);
const state = { backup: undefined, target: undefined, licensors: new Map() };

function applyStyle() {
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
    document.adoptedStyleSheets = [sheet];
  } catch {
    // an old browser: the page works unstyled
  }
}

function say(id, text, isError = false) {
  const element = $(id);
  element.textContent = text;
  element.classList.toggle('error', isError);
}

function readJsonFile(input) {
  return new Promise((resolve, reject) => {
    const file = input.files?.[0];
    if (file === undefined) return resolve(undefined);
    const reader = new FileReader();
    reader.onload = () => {
      try {
        resolve(JSON.parse(String(reader.result)));
      } catch {
        reject(new Error(`${file.name} is not a JSON file`));
      }
    };
    reader.onerror = () => reject(new Error(`${file.name} cannot be read`));
    reader.readAsText(file);
  });
}

async function call(method, path, body, headers = {}) {
  const response = await fetch(path, {
    method, headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  let answer;
  try {
    answer = await response.json();
  } catch {
    answer = { error: { reason: 'unavailable', message: `HTTP ${response.status}` } };
  }
  return { ok: response.ok, status: response.status, answer };
}

const refusal = (answer) => answer?.error?.message ?? answer?.error?.reason ?? 'refused';
const nameOf = (key, firmCode) => state.licensors.get(key)?.name ?? `licensor ${key.slice(0, 12)}… (firm ${firmCode})`;

function downloadLink(id, name, value) {
  const link = $(id);
  link.href = URL.createObjectURL(new Blob([`${JSON.stringify(value, null, 2)}\n`], { type: 'application/json' }));
  link.download = name;
  link.hidden = false;
}

const answerFile = (updates) => ({ format: 'vsc-license-restore-answer/1', updates });

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className !== undefined) td.className = className;
  return td;
}

/** One row per firm item of the backup: a tick, the licensor, and its status as the job goes on. */
function renderItems(items) {
  const body = $('items').tBodies[0];
  body.replaceChildren();
  for (const item of items) {
    const row = body.insertRow();
    row.dataset.licensor = item.licensorKey;
    const tick = document.createElement('input');
    tick.type = 'checkbox';
    tick.checked = true;
    tick.value = item.licensorKey;
    tick.setAttribute('aria-label', `restore the licenses of ${nameOf(item.licensorKey, item.firmCode)}`);
    row.insertCell().append(tick);
    cell(row, item.name ?? nameOf(item.licensorKey, item.firmCode));
    cell(row, String(item.firmCode));
    const registered = state.licensors.has(item.licensorKey);
    cell(row, item.status ?? (registered ? 'ready' : 'no restore offered'), `status ${item.status ?? ''}`);
    cell(row, item.message ?? (item.status === 'restored' ? `restored${item.degreePercent === undefined ? '' : `, units ${item.degreePercent} %`}` : ''));
  }
}

function updateItems(items) {
  for (const item of items) {
    const row = [...$('items').tBodies[0].rows].find((candidate) => candidate.dataset.licensor === item.licensorKey);
    if (row === undefined) continue;
    if (item.name !== undefined) row.cells[1].textContent = item.name;
    row.cells[3].textContent = item.status;
    row.cells[3].className = `status ${item.status}`;
    row.cells[4].textContent = item.status === 'restored' ? `restored${item.degreePercent === undefined ? '' : `, units ${item.degreePercent} %`}` : item.message ?? '';
  }
}

function fillLicensorSelect(id, keys) {
  const select = $(id);
  select.replaceChildren(...keys.map((key) => {
    const option = document.createElement('option');
    option.value = key;
    option.textContent = state.licensors.get(key)?.name ?? key;
    return option;
  }));
}

async function loadFiles() {
  try {
    state.backup = await readJsonFile($('backup-file'));
    state.target = await readJsonFile($('target-file'));
  } catch (error) {
    say('files-status', error.message, true);
    return;
  }
  const items = Array.isArray(state.backup?.items) ? state.backup.items : [];
  renderItems(items.map((item) => ({ licensorKey: String(item.licensorKey), firmCode: item.firmCode })));
  fillLicensorSelect('transfer-licensor', items.map((item) => String(item.licensorKey)).filter((key) => state.licensors.has(key)));
  const ready = state.backup !== undefined && state.target !== undefined;
  $('restore').disabled = !ready || items.length === 0;
  say('files-status', state.backup === undefined ? 'Choose the backup file.' : `Backup of card ${state.backup.box?.serial ?? '?'}: ${items.length} licensors.${state.target === undefined ? ' Choose the target info file.' : ` Target: card ${state.target.serial ?? '?'}.`}`);
}

async function poll(id) {
  const { ok, answer } = await call('GET', `/v1/restore-jobs/${id}`);
  if (!ok) return say('job-state', refusal(answer), true);
  updateItems(answer.items);
  const done = answer.items.filter((item) => item.status !== 'pending').length;
  say('job-state', answer.state === 'done' ? `Done: ${answer.items.filter((item) => item.status === 'restored').length} of ${answer.items.length} restored.` : `Waiting for the licensors: ${done} of ${answer.items.length} answered…`);
  if (answer.state !== 'done') return void setTimeout(() => void poll(id), POLL_MS);
  $('restore').disabled = false;
  if (answer.items.some((item) => item.status === 'restored')) {
    const link = $('answer-link');
    link.href = `/v1/restore-jobs/${id}/answer`;
    link.download = `restore-answer-${String(state.target?.serial ?? 'card').replace(/[^A-Za-z0-9._-]/g, '_')}.json`;
    link.hidden = false;
  }
}

async function restore() {
  const select = [...$('items').querySelectorAll('input[type=checkbox]')].filter((tick) => tick.checked).map((tick) => tick.value);
  if (select.length === 0) return say('job-state', 'Tick at least one licensor.', true);
  $('restore').disabled = true;
  $('answer-link').hidden = true;
  const { ok, answer } = await call('POST', '/v1/restore-jobs', { backup: state.backup, target: state.target, select });
  if (!ok) {
    $('restore').disabled = false;
    return say('job-state', refusal(answer), true);
  }
  say('job-state', 'Sent to the licensors…');
  await poll(answer.job);
}

async function transfer() {
  const licensorKey = $('transfer-licensor').value;
  if (licensorKey === '' || state.backup === undefined || state.target === undefined) return say('transfer-result', 'Choose the backup and target files and a licensor.', true);
  const { ok, answer } = await call('POST', '/v1/transfer-jobs', { backup: state.backup, target: state.target, licensorKey });
  if (!ok) return say('transfer-result', refusal(answer), true);
  state.transfer = { licensorKey, id: answer.transfer };
  say('transfer-result', `Transfer ${answer.transfer}: apply the delete to the old card, then choose the card's receipt record of it.`);
  downloadLink('transfer-delete-link', `transfer-${answer.transfer}-delete.json`, answerFile([answer.deleteUpdate]));
}

async function proveTransfer() {
  if (state.transfer === undefined) return say('transfer-result', 'Start the transfer first.', true);
  let proof;
  try {
    proof = await readJsonFile($('transfer-proof-file'));
  } catch (error) {
    return say('transfer-result', error.message, true);
  }
  const record = proof?.record ?? proof;
  const { ok, answer } = await call('POST', '/v1/transfer-jobs/proof', { licensorKey: state.transfer.licensorKey, transfer: state.transfer.id, record });
  if (!ok) return say('transfer-result', refusal(answer), true);
  say('transfer-result', 'Transferred: apply the transfer answer to the new card.');
  downloadLink('transfer-answer-link', `transfer-${state.transfer.id}-answer.json`, answerFile([answer.update]));
}

async function reactivate() {
  let request;
  try {
    request = await readJsonFile($('reactivation-file'));
  } catch (error) {
    return say('reactivation-result', error.message, true);
  }
  if (request === undefined) return say('reactivation-result', 'Choose the reactivation request file.', true);
  const { ok, answer } = await call('POST', '/v1/reactivation-jobs', { licensorKey: $('reactivation-licensor').value, request });
  if (!ok) return say('reactivation-result', refusal(answer), true);
  say('reactivation-result', 'Reactivated: apply the answer to the card.');
  downloadLink('reactivation-answer-link', 'reactivation-answer.json', answerFile([...(answer.withdrawal === undefined ? [] : [answer.withdrawal.update]), answer.update]));
}

async function loadAlerts() {
  const licensorKey = $('licensor-key').value;
  const headers = { authorization: `Bearer ${$('api-key').value.trim()}` };
  const { ok, answer } = await call('GET', `/v1/licensor/alerts?licensorKey=${encodeURIComponent(licensorKey)}`, undefined, headers);
  const body = $('alerts').tBodies[0];
  body.replaceChildren();
  if (!ok) return say('alerts-status', refusal(answer), true);
  const alerts = Array.isArray(answer.alerts) ? answer.alerts : [];
  say('alerts-status', `${alerts.length} alerts of ${state.licensors.get(licensorKey)?.name ?? licensorKey}.`);
  for (const alert of alerts) {
    const row = body.insertRow();
    row.dataset.alert = String(alert.id);
    for (const text of [String(alert.id), alert.kind, alert.subject, alert.detail, alert.state]) cell(row, String(text ?? ''));
    const action = row.insertCell();
    if (alert.state !== 'pending') continue;
    const approve = document.createElement('button');
    approve.type = 'button';
    approve.textContent = 'Approve';
    approve.addEventListener('click', async () => {
      const result = await call('POST', `/v1/licensor/alerts/${alert.id}/approve?licensorKey=${encodeURIComponent(licensorKey)}`, undefined, headers);
      if (!result.ok) return say('alerts-status', refusal(result.answer), true);
      await loadAlerts();
    });
    action.append(approve);
  }
}

function showTab(name) {
  for (const tab of ['customer', 'licensor']) {
    $(tab).hidden = tab !== name;
    $(`tab-${tab}`).setAttribute('aria-pressed', String(tab === name));
  }
}

async function start() {
  applyStyle();
  const { ok, answer } = await call('GET', '/v1/licensors');
  if (ok) for (const licensor of answer.licensors) state.licensors.set(licensor.licensorKey, licensor);
  const keys = [...state.licensors.keys()];
  fillLicensorSelect('licensor-key', keys);
  fillLicensorSelect('reactivation-licensor', keys);
  $('tab-customer').addEventListener('click', () => showTab('customer'));
  $('tab-licensor').addEventListener('click', () => showTab('licensor'));
  $('backup-file').addEventListener('change', () => void loadFiles());
  $('target-file').addEventListener('change', () => void loadFiles());
  $('restore').addEventListener('click', () => void restore());
  $('transfer-start').addEventListener('click', () => void transfer());
  $('transfer-proof').addEventListener('click', () => void proveTransfer());
  $('reactivation-start').addEventListener('click', () => void reactivate());
  $('alerts-load').addEventListener('click', () => void loadAlerts());
  document.body.dataset.ready = 'true';
}

if (window.document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => void start());
else void start();
