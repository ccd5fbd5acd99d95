// The transformation rule editor: its operations edited as rows (written back to the JSON textarea
// the form posts, which still works typed by hand without this script), and a live preview of the
// draft rule on a recent call or a pasted one. A file, not an inline script: the dashboard's
// Content-Security-Policy runs none.
"use strict";

(() => {
  const form = document.getElementById("rule-form");
  if (!form) {
    return;
  }
  const $ = (id) => document.getElementById(id);
  const fields = form.elements;
  const textarea = $("id_operations");
  const rowsBox = $("operation-rows");
  const readOnly = form.dataset.readOnly === "1";
  const token = fields.csrfmiddlewaretoken.value;
  const DELAY_MS = 300;

  // Each operation's fields: [key, kind, label]; a kind is "path", "name", "any" (a path read
  // anywhere in the call), "json" (a value), or the list of its choices.
  const OPERATIONS = {
    rename_event: ["Rename the event", [["to", "name", "to"]]],
    rename_property: ["Rename a property", [["from", "path", "from"], ["to", "path", "to"]]],
    change_type: ["Change the type", [["path", "path", "of"], ["to", ["number", "text", "boolean"], "to"]]],
    change_case: ["Change the case", [["path", "path", "of"], ["to", ["upper", "lower"], "to"]]],
    delete_property: ["Delete a property", [["path", "path", "path"]]],
    copy_field: ["Copy a field", [["from", "any", "from"], ["to", "path", "to"]]],
    set_constant: ["Set a constant", [["path", "path", "path"], ["value", "json", "to"]]],
    drop: ["Drop the call", []],
  };

  // A value field holds JSON, or else text: the server reads it the same way (lenient_json).
  const lenient = (text) => {
    try {
      return JSON.parse(text);
    } catch (error) {
      return text;
    }
  };
  const shown = (value) => (typeof value === "string" && lenient(value) === value ? value : JSON.stringify(value));
  const root = () => (["identify", "group"].includes(fields.call_type.value) ? "traits" : "properties");
  const element = (tag, attributes = {}, text = "") => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      node.setAttribute(name, value);
    }
    if (text) {
      node.textContent = text;
    }
    return node;
  };

  // -- operations as rows ----------------------------------------------------------------------

  function representable(list) {
    return (
      Array.isArray(list) &&
      list.every(
        (op) =>
          op !== null &&
          typeof op === "object" &&
          !Array.isArray(op) &&
          Object.hasOwn(OPERATIONS, op.op) &&
          Object.keys(op).every((key) => key === "op" || OPERATIONS[op.op][1].some(([name]) => name === key)) &&
          Object.values(op).every((value, index) => Object.keys(op)[index] === "value" || typeof value === "string")
      )
    );
  }

  function fieldInput(row, key, kind, label, value) {
    const wrap = element("label", { class: `op-field op-${key}` });
    wrap.append(element("span", {}, label));
    let input;
    if (Array.isArray(kind)) {
      input = element("select", { "data-key": key });
      for (const choice of kind) {
        input.append(element("option", { value: choice }, choice));
      }
      input.value = value === undefined ? kind[0] : value;
    } else {
      const hint = { path: `${root()}.cart_total`, any: "context.page.url", name: "Order Placed", json: "12, true or text" }[kind];
      input = element("input", { type: "text", "data-key": key, "data-kind": kind, placeholder: hint, spellcheck: "false" });
      input.value = value === undefined ? "" : kind === "json" ? shown(value) : value;
    }
    wrap.append(input);
    row.querySelector(".op-fields").append(wrap);
  }

  function addRow(op, index) {
    const row = element("div", { class: "operation-row", "data-op": op.op });
    row.append(element("span", { class: "op-number" }, String(index + 1)));
    const select = element("select", { class: "op-select", "aria-label": `Operation ${index + 1}` });
    for (const [name, [label]] of Object.entries(OPERATIONS)) {
      select.append(element("option", { value: name }, label));
    }
    select.value = op.op;
    row.append(select, element("span", { class: "op-fields" }));
    for (const [key, kind, label] of OPERATIONS[op.op][1]) {
      fieldInput(row, key, kind, label, op[key]);
    }
    if (!readOnly) {
      const tools = element("span", { class: "op-tools" });
      tools.append(
        element("button", { type: "button", class: "button op-up", title: "Run it earlier", "aria-label": "Move up" }, "↑"),
        element("button", { type: "button", class: "button op-down", title: "Run it later", "aria-label": "Move down" }, "↓"),
        element("button", { type: "button", class: "button op-remove", title: "Remove this operation" }, "Remove")
      );
      row.append(tools);
    }
    rowsBox.append(row);
  }

  function readRows() {
    return [...rowsBox.querySelectorAll(".operation-row")].map((row) => {
      const op = { op: row.querySelector(".op-select").value };
      for (const input of row.querySelectorAll("[data-key]")) {
        op[input.dataset.key] = input.dataset.kind === "json" ? lenient(input.value) : input.value.trim();
      }
      return op;
    });
  }

  function showRows(list) {
    rowsBox.replaceChildren();
    list.forEach(addRow);
    $("rows-note").textContent = list.length ? "" : "No operation yet.";
  }

  // The rows stay (focus and all): only their numbers change.
  function writeRows() {
    const rows = [...rowsBox.querySelectorAll(".operation-row")];
    rows.forEach((row, index) => {
      row.querySelector(".op-number").textContent = String(index + 1);
      row.querySelector(".op-select").setAttribute("aria-label", `Operation ${index + 1}`);
    });
    $("rows-note").textContent = rows.length ? "" : "No operation yet.";
    textarea.value = JSON.stringify(readRows(), null, 2);
    schedule();
  }

  function startRows() {
    let list;
    try {
      list = JSON.parse(textarea.value || "[]");
    } catch (error) {
      list = null;
    }
    if (!representable(list)) {
      return; // only the JSON says what this is: it stays the editor
    }
    showRows(list);
    rowsBox.hidden = false;
    $("operation-tools").hidden = readOnly;
    $("operations-json").open = false;
  }

  rowsBox.addEventListener("change", (event) => {
    if (event.target.classList.contains("op-select")) {
      const row = event.target.closest(".operation-row");
      const kept = Object.fromEntries([...row.querySelectorAll("[data-key]")].map((input) => [input.dataset.key, input.value]));
      row.dataset.op = event.target.value;
      row.querySelector(".op-fields").replaceChildren();
      for (const [key, kind, label] of OPERATIONS[event.target.value][1]) {
        fieldInput(row, key, kind, label, kind === "json" ? undefined : kept[key]);
      }
    }
    writeRows();
  });
  rowsBox.addEventListener("input", writeRows);
  rowsBox.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) {
      return;
    }
    const row = button.closest(".operation-row");
    if (button.classList.contains("op-remove")) {
      row.remove();
    } else if (button.classList.contains("op-up") && row.previousElementSibling) {
      row.previousElementSibling.before(row);
    } else if (button.classList.contains("op-down") && row.nextElementSibling) {
      row.nextElementSibling.after(row);
    }
    writeRows();
  });
  $("add-operation").addEventListener("click", () => {
    const list = readRows();
    list.push({ op: "rename_property", from: "", to: "" });
    textarea.value = JSON.stringify(list, null, 2);
    showRows(list);
    rowsBox.lastElementChild.querySelector(".op-select").focus();
    schedule();
  });
  textarea.addEventListener("input", () => {
    let list;
    try {
      list = JSON.parse(textarea.value || "[]");
    } catch (error) {
      list = null;
    }
    const fits = representable(list);
    if (fits) {
      showRows(list);
    }
    rowsBox.hidden = !fits;
    $("operation-tools").hidden = readOnly || !fits;
    schedule();
  });

  // -- what the rule matches -------------------------------------------------------------------

  function showEventField() {
    const kind = fields.call_type.value;
    $("event-row").hidden = !["track", "page"].includes(kind);
    $("event-label").textContent = kind === "page" ? "Page name:" : "Event name:";
    const condition = fields.condition_kind.value;
    fields.condition_path.hidden = condition === "none";
    fields.condition_value.hidden = condition !== "equals";
    fields.condition_path.placeholder = `${root()}.plan`;
  }

  function draft() {
    let operations;
    try {
      operations = JSON.parse(textarea.value || "[]");
    } catch (error) {
      return { error: `operations: not JSON (${error.message})` };
    }
    const kind = fields.condition_kind.value;
    const path = fields.condition_path.value.trim();
    const conditions = {
      equals: { path, equals: lenient(fields.condition_value.value) },
      exists: { path, exists: true },
      absent: { path, exists: false },
    };
    const spec = {
      name: fields.name.value.trim(),
      enabled: fields.enabled.checked,
      source: fields.source.value || null,
      call_type: fields.call_type.value,
      event: ($("event-row").hidden ? "" : fields.event.value.trim()) || null,
      condition: conditions[kind] || null,
      operations,
    };
    if (form.dataset.ruleId) {
      spec.id = Number(form.dataset.ruleId);
      spec.revision = Number(form.dataset.revision);
    }
    return { spec };
  }

  // -- the calls to preview on -----------------------------------------------------------------

  const recent = $("recent-calls");
  const pasted = $("preview-payload");
  let picked = null;
  let callsTimer = null;

  function pick(pk) {
    picked = pk;
    for (const button of recent.querySelectorAll(".pick-call")) {
      const chosen = button.dataset.call === String(pk);
      button.classList.toggle("picked", chosen);
      button.setAttribute("aria-pressed", chosen ? "true" : "false");
    }
  }

  recent.addEventListener("click", (event) => {
    const button = event.target.closest(".pick-call");
    if (button) {
      pick(Number(button.dataset.call));
      schedule(0);
    }
  });
  pasted.addEventListener("input", () => {
    pick(pasted.value.trim() ? null : picked);
    schedule();
  });

  async function loadCalls() {
    const query = new URLSearchParams({
      call_type: fields.call_type.value,
      event: $("event-row").hidden ? "" : fields.event.value,
      source: fields.source.value,
    });
    let answer;
    try {
      const response = await fetch(`${form.dataset.callsUrl}?${query}`, { credentials: "same-origin" });
      answer = await response.json();
    } catch (error) {
      return;
    }
    recent.replaceChildren();
    for (const call of answer.calls || []) {
      const button = element("button", { type: "button", class: "pick-call", "data-call": call.pk });
      button.append(element("span", { class: "call-type" }, call.type), ` ${call.event || call.group_id} `);
      button.append(element("span", { class: "quiet" }, `${call.user_id || call.anonymous_id} · ${call.received_at}`));
      const item = element("li");
      item.append(button);
      recent.append(item);
    }
    if (!recent.children.length) {
      recent.append(element("li", { class: "empty quiet" }, "No stored call of this kind yet: paste one."));
    }
    // The call picked stays picked while it is listed; else the newest listed one is.
    const listed = [...recent.querySelectorAll(".pick-call")].map((button) => Number(button.dataset.call));
    if (!pasted.value.trim()) {
      pick(listed.includes(picked) ? picked : listed.length ? listed[0] : null);
    }
    schedule();
  }

  // -- the preview -----------------------------------------------------------------------------

  let timer = null;
  let asked = 0;

  function schedule(delay = DELAY_MS) {
    clearTimeout(timer);
    timer = setTimeout(run, delay);
  }

  function status(state, text) {
    const line = $("preview-status");
    line.dataset.state = state;
    line.textContent = text;
  }

  function list(id, items) {
    const box = $(id);
    box.replaceChildren(...items.map((text) => element("li", {}, text)));
    box.hidden = !items.length;
  }

  function requests(id, entries, skip) {
    const box = $(id);
    box.replaceChildren();
    if (skip) {
      box.append(element("li", { class: "skip" }, `Nothing is sent: ${skip}.`));
    }
    for (const entry of entries) {
      const item = element("li");
      item.append(element("span", { class: `method method-${entry.method.toLowerCase()}` }, entry.method), " ");
      item.append(element("code", {}, entry.path));
      if (entry.body !== null) {
        item.append(element("pre", { class: "json" }, JSON.stringify(entry.body, null, 2)));
      }
      box.append(item);
    }
  }

  function render(answer) {
    list("preview-problems", answer.problems);
    list("preview-warnings", answer.warnings);
    list("preview-changes", answer.changes);
    $("before-note").textContent = answer.earlier.length ? `after rule${answer.earlier.length > 1 ? "s" : ""} ${answer.earlier.join(", ")}` : "";
    $("preview-before").textContent = JSON.stringify(answer.before, null, 2);
    $("preview-after").textContent = answer.after === null ? "" : JSON.stringify(answer.after, null, 2);
    requests("requests-before", answer.requests_before, answer.skip_before);
    requests("requests-after", answer.requests_after, answer.skip_after);
    if (answer.after === null) {
      status("problems", "The rule cannot run until its problems are fixed.");
    } else if (!answer.matched) {
      status("unmatched", `The rule does not apply to this call: ${answer.reason}.`);
    } else if (answer.dropped) {
      status("dropped", "The rule drops this call: nothing is sent for it.");
    } else {
      const count = answer.changes.length;
      status("matched", `The rule applies: ${count ? `${count} change${count > 1 ? "s" : ""}` : "nothing changes"}.`);
    }
  }

  async function run() {
    const { spec, error } = draft();
    const body = { rule: spec };
    if (pasted.value.trim() && picked === null) {
      const payload = lenient(pasted.value);
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
        status("error", "The pasted call is not a JSON object.");
        return;
      }
      body.payload = payload;
    } else if (picked !== null) {
      body.call = picked;
    } else {
      status("idle", "Pick a call or paste one to see what the rule does to it.");
      return;
    }
    if (error) {
      list("preview-problems", [error]);
      status("problems", "The rule cannot run until its problems are fixed.");
      return;
    }
    const mine = ++asked;
    status("busy", "Previewing…");
    let answer;
    let ok = false;
    try {
      const response = await fetch(form.dataset.previewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
        body: JSON.stringify(body),
      });
      ok = response.ok;
      answer = await response.json();
    } catch (failure) {
      answer = { error: "The preview did not answer." };
    }
    if (mine !== asked) {
      return; // a newer draft was sent meanwhile
    }
    if (!ok) {
      status("error", answer.error || "The preview failed.");
      return;
    }
    render(answer);
  }

  const refreshCalls = () => {
    clearTimeout(callsTimer);
    callsTimer = setTimeout(loadCalls, DELAY_MS);
  };
  for (const name of ["call_type", "source", "event"]) {
    fields[name].addEventListener(name === "event" ? "input" : "change", refreshCalls);
  }
  form.addEventListener("input", (event) => {
    if (!rowsBox.contains(event.target) && event.target !== textarea) {
      showEventField();
      schedule();
    }
  });
  form.addEventListener("change", (event) => {
    if (!rowsBox.contains(event.target)) {
      showEventField();
      schedule();
    }
  });

  showEventField();
  startRows();
  const first = recent.querySelector(".pick-call");
  if (first) {
    pick(Number(first.dataset.call));
    schedule(0);
  }
})();
