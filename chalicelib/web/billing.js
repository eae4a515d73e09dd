// The billing page: reads this service's JSON API with an org-reader token and draws what it
// reads. No library, no network but this origin; charts are SVG drawn here. Every value shown
// comes from the API as it answered (money as integer cents or its display string).
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#2f6fdf", "#e0752b", "#2e9d5b", "#c4384a", "#8356c4", "#1f9aa8", "#b08a16", "#6b6f76"];
  const state = { org: "", token: "" };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  function dollars(cents) {
    const sign = cents < 0 ? "-" : "";
    const abs = Math.abs(cents);
    return sign + "$" + Math.floor(abs / 100).toLocaleString("en-US") + "." + String(abs % 100).padStart(2, "0");
  }

  // Decimal strings as the API writes them ("7.5E-7") in plain digits, without going through a float.
  function plainDecimal(text) {
    const match = /^(-?)(\d+)(?:\.(\d+))?[eE]([+-]?\d+)$/.exec(text);
    if (!match) return text;
    const [, sign, whole, fraction = "", exponent] = match;
    const digits = whole + fraction;
    const point = whole.length + Number(exponent);
    const padded = point <= 0 ? "0".repeat(1 - point) + digits : digits.padEnd(point, "0");
    const at = Math.max(point, 1);
    const result = (padded.slice(0, at).replace(/^0+(?=\d)/, "") + "." + padded.slice(at)).replace(/\.?0*$/, "");
    return sign + (result || "0");
  }

  function day(iso) {
    return iso.slice(0, 10);
  }

  function setStatus(text) {
    document.getElementById("status").textContent = text;
  }

  class ApiError extends Error {}

  async function api(path, accept) {
    const response = await fetch(path, {
      headers: { Authorization: "Bearer " + state.token, Accept: accept || "application/json" },
      cache: "no-store",
    });
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try {
        const body = await response.json();
        if (body && body.error) message = body.error.message + " (" + body.error.code + ")";
      } catch (ignored) {
        // not JSON: keep the status line
      }
      throw new ApiError(message);
    }
    return accept === "text/csv" ? response.text() : response.json();
  }

  function orgPath(rest) {
    return "v1/orgs/" + encodeURIComponent(state.org) + rest;
  }

  async function download(path, filename) {
    try {
      const text = await api(path, "text/csv");
      const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
      const link = el("a", { href: url, download: filename });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (error) {
      setStatus("Download failed: " + error.message);
    }
  }

  // -- upcoming invoice ------------------------------------------------------------------------
  function showUpcoming(invoice) {
    document.getElementById("upcoming-period").textContent = invoice.period + (invoice.number ? " · " + invoice.number : "");
    document.getElementById("upcoming-total").textContent = invoice.total.display;
    document.getElementById("upcoming-mtd").textContent = invoice.month_to_date ? invoice.month_to_date.display : invoice.total.display;
    document.getElementById("upcoming-projected").textContent = invoice.projected_total ? invoice.projected_total.display : "—";
    const asOf = document.getElementById("upcoming-as-of");
    asOf.dateTime = invoice.as_of;
    asOf.textContent = invoice.as_of.replace("T", " ").slice(0, 19) + " UTC";
    document.getElementById("download-upcoming").onclick = () =>
      download(orgPath("/invoices/upcoming?format=csv"), state.org + "-" + invoice.id + ".csv");
  }

  function showLines(invoice) {
    const table = document.getElementById("lines");
    table.querySelectorAll("tbody").forEach((body) => body.remove());
    const byApp = new Map();
    for (const line of invoice.lines) {
      const app = line.app || "Account";
      if (!byApp.has(app)) byApp.set(app, []);
      byApp.get(app).push(line);
    }
    for (const app of [...byApp.keys()].sort()) {
      const lines = byApp.get(app);
      const subtotal = lines.reduce((sum, line) => sum + line.amount.cents, 0);
      const body = el("tbody", { "data-app": app });
      body.append(el("tr", { class: "group" },
        el("th", { scope: "rowgroup", colspan: 4 }, app),
        el("td", { class: "num" }, dollars(subtotal))));
      for (const line of lines) {
        const description = el("th", { scope: "row" }, line.description);
        if (line.late) description.append(" ", el("span", { class: "badge" }, "Late usage for " + line.usage_period));
        const amount = "$" + plainDecimal(line.unit_price.amount) + " / " + line.unit_price.unit;
        const price = line.unit_price.per === "1" ? amount : amount + " (per " + line.unit_price.per + " " + line.unit + ")";
        body.append(el("tr", { "data-line": line.id },
          description,
          el("td", { class: "num" }, line.display_quantity + " " + line.display_unit),
          el("td", { class: "num" }, line.kind === "credit" || line.kind === "one_off" ? "" : price),
          el("td", { class: "num" }, line.free_quantity === "0" ? "" : line.free_quantity + " " + line.unit),
          el("td", { class: "num", "data-cents": line.amount.cents }, line.amount.display)));
      }
      table.append(body);
    }
  }

  // The charts show usage on the days it happened; say what of this invoice they leave out.
  function noteOutsideCharts(invoice) {
    const late = invoice.lines.filter((line) => line.late);
    const fixed = invoice.lines.filter((line) => line.kind === "credit" || line.kind === "one_off");
    const sum = (lines) => dollars(lines.reduce((total, line) => total + line.amount.cents, 0));
    const parts = [];
    if (late.length) {
      const periods = [...new Set(late.map((line) => line.usage_period))].sort().join(", ");
      parts.push("late usage (" + sum(late) + "), drawn on the days it happened, in " + periods);
    }
    if (fixed.length) parts.push("credits and one-off charges (" + sum(fixed) + ")");
    const note = document.getElementById("charts-note");
    note.hidden = parts.length === 0;
    note.textContent = parts.length ? "On this invoice but not in these charts: " + parts.join("; ") + "." : "";
  }

  // -- charts ----------------------------------------------------------------------------------
  function drawChart(figure, usage) {
    const days = usage.totals.map((point) => day(point.start));
    const maxCents = Math.max(1, ...usage.totals.map((point) => point.cost_cents));
    // Drawn at the width it is shown at, so its text stays legible on a phone.
    const width = Math.max(300, Math.min(960, figure.querySelector(".plot").clientWidth || 720));
    const height = 240, left = 56, bottom = 24, top = 8;
    const slot = (width - left) / Math.max(1, days.length);
    const scale = (height - top - bottom) / maxCents;
    const plot = svg("svg", {
      viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": figure.querySelector("figcaption").textContent +
        ": cost per day from " + days[0] + " to " + days[days.length - 1], class: "bars",
    });
    for (const fraction of [0, 0.5, 1]) {
      const y = height - bottom - fraction * maxCents * scale;
      plot.append(svg("line", { x1: left, x2: width, y1: y, y2: y, class: "grid" }));
      plot.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, dollars(Math.round(fraction * maxCents))));
    }
    days.forEach((name, index) => {
      const x = left + index * slot + slot / 2;
      if (index % 7 === 0 && x + 18 < width) {
        plot.append(svg("text", { x: x, y: height - 6, "text-anchor": "middle", class: "axis" }, name.slice(5)));
      }
    });
    const stacked = days.map(() => 0);
    const legend = figure.querySelector(".legend");
    legend.replaceChildren();
    usage.series.forEach((series, index) => {
      const color = COLORS[index % COLORS.length];
      const group = svg("g", { class: "series", "data-series": series.group, fill: color });
      series.points.forEach((point, i) => {
        if (point.cost_cents <= 0) return;
        const h = point.cost_cents * scale;
        const y = height - bottom - stacked[i] * scale - h;
        stacked[i] += point.cost_cents;
        group.append(svg("rect", { x: left + i * slot + 1, y: y, width: Math.max(1, slot - 2), height: h,
          "data-day": days[i], "data-cents": point.cost_cents },
          svg("title", {}, series.label + " · " + days[i] + " · " + dollars(point.cost_cents))));
      });
      plot.append(group);
      legend.append(el("li", { "data-series": series.group },
        el("span", { class: "swatch", "data-color": color }), series.label + " " + series.cost.display));
    });
    legend.querySelectorAll(".swatch").forEach((swatch) => { swatch.style.background = swatch.dataset.color; });
    figure.querySelector(".plot").replaceChildren(plot);
    drawFigures(figure.querySelector("table.figures"), usage, days);
  }

  function drawFigures(table, usage, days) {
    const head = el("tr", {}, el("th", { scope: "col" }, "Day"));
    for (const series of usage.series) head.append(el("th", { scope: "col", class: "num" }, series.label));
    head.append(el("th", { scope: "col", class: "num" }, "Total"));
    const body = el("tbody");
    days.forEach((name, i) => {
      const row = el("tr", { "data-day": name }, el("th", { scope: "row" }, name));
      for (const series of usage.series) {
        row.append(el("td", { class: "num", "data-series": series.group, "data-cents": series.points[i].cost_cents },
          dollars(series.points[i].cost_cents)));
      }
      row.append(el("td", { class: "num", "data-total": usage.totals[i].cost_cents }, dollars(usage.totals[i].cost_cents)));
      body.append(row);
    });
    table.replaceChildren(el("thead", {}, head), body);
  }

  // -- past invoices ---------------------------------------------------------------------------
  function showInvoices(page) {
    const body = document.querySelector("#invoices tbody");
    body.replaceChildren();
    for (const invoice of page.invoices.filter((invoice) => invoice.status !== "draft")) {  // drafts: above
      const button = el("button", { type: "button", class: "link" }, "CSV");
      button.setAttribute("aria-label", "Download the lines of " + (invoice.number || invoice.id) + " as CSV");
      button.onclick = () => download(orgPath("/invoices/" + encodeURIComponent(invoice.id) + "?format=csv"),
        state.org + "-" + invoice.id + ".csv");
      const sync = invoice.sync.state + (invoice.sync.stripe_invoice_number ? " · " + invoice.sync.stripe_invoice_number : "");
      body.append(el("tr", { "data-invoice": invoice.id },
        el("th", { scope: "row" }, invoice.number || invoice.id),
        el("td", {}, invoice.period),
        el("td", {}, el("span", { class: "status status-" + invoice.status }, invoice.status)),
        el("td", {}, sync),
        el("td", {}, invoice.payment_status),
        el("td", { class: "num", "data-cents": invoice.total.cents }, invoice.total.display),
        el("td", {}, button)));
    }
  }

  // The usage is charted grouped each of these ways, one figure each: #chart-{group}.
  const CHART_GROUPS = ["category", "app"];

  function addChartFigures() {
    const template = document.getElementById("chart-figure");
    for (const group of CHART_GROUPS) {
      const figure = template.content.firstElementChild.cloneNode(true);
      figure.id = "chart-" + group;
      figure.querySelector("figcaption").textContent = "By " + group;
      figure.querySelector("summary").textContent = "Daily figures by " + group;
      template.before(figure);
    }
  }

  // -- loading ---------------------------------------------------------------------------------
  const SECTIONS = ["upcoming", "charts", "lines-section", "history"];

  async function load() {
    document.getElementById("org-title").textContent = "· " + state.org;
    for (const id of SECTIONS) document.getElementById(id).hidden = true;
    delete document.body.dataset.loaded;
    setStatus("Loading…");
    try {
      const upcoming = await api(orgPath("/invoices/upcoming"));
      const range = "from=" + day(upcoming.period_start) + "&to=" + day(upcoming.period_end) + "&granularity=day";
      const [usages, invoices] = await Promise.all([
        Promise.all(CHART_GROUPS.map((group) => api(orgPath("/usage?" + range + "&group_by=" + group)))),
        api(orgPath("/invoices?limit=24")),
      ]);
      for (const id of SECTIONS) document.getElementById(id).hidden = false;  // shown first: charts size to them
      showUpcoming(upcoming);
      showLines(upcoming);
      noteOutsideCharts(upcoming);
      CHART_GROUPS.forEach((group, i) => drawChart(document.getElementById("chart-" + group), usages[i]));
      showInvoices(invoices);
      document.getElementById("download-usage").onclick = () =>
        download(orgPath("/usage?" + range + "&group_by=line&format=csv"), state.org + "-usage-" + upcoming.period + ".csv");
      setStatus("");
      document.body.dataset.loaded = "true";
    } catch (error) {
      if (!(error instanceof ApiError) && !(error instanceof TypeError)) throw error;
      setStatus("Could not load billing: " + error.message);
      document.body.dataset.loaded = "error";
    }
  }

  function fromFragment() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    if (!params.get("token") || !params.get("org")) return false;
    state.org = params.get("org");
    state.token = params.get("token");
    document.getElementById("org").value = state.org;
    // Keep the token out of the address bar, history and anything copied from it.
    history.replaceState(null, "", window.location.pathname + window.location.search);
    return true;
  }

  addChartFigures();
  document.getElementById("access-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.org = document.getElementById("org").value.trim();
    state.token = document.getElementById("token").value.trim();
    document.getElementById("token").value = "";
    load();
  });
  window.addEventListener("hashchange", () => { if (fromFragment()) load(); });  // a new link pasted in
  if (fromFragment()) load();
})();
